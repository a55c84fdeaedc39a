//! `view_image` in a run: the image reaches the model on both wire protocols.

use crate::common;

use cordon_testkit::{Script, ScriptedServer};
use serde_json::Value;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x02\0\0\0\x03\x08\x02\0\0\0\0\0\0\0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_sees_the_image_on_both_protocols() {
    for api in ["responses", "chat"] {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir(&ws).unwrap();
        std::fs::write(ws.join("chart.png"), PNG).unwrap();
        std::fs::write(ws.join("notes.txt"), "not an image").unwrap();
        let script = Script::from_toml(
            r#"
            [[turns]]
            tool_calls = [
              { name = "view_image", arguments = { path = "chart.png" } },
              { name = "view_image", arguments = { path = "notes.txt" } },
              { name = "view_image", arguments = { path = "../../etc/passwd" } },
            ]
            [[turns]]
            text = "A tiny chart."
            "#,
        )
        .unwrap();
        let server = ScriptedServer::start(script).await.unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "[providers.p]\napi = \"{api}\"\nbase_url = \"{}\"\n",
                server.base_url()
            ),
        )
        .unwrap();
        let mut cmd = common::cordon_std(dir.path());
        cmd.env("CORDON_CONFIG", &config)
            .args(["run", "--json", "--workspace"])
            .arg(&ws)
            .args(["--model", "p:m", "describe the chart"]);
        let out = common::output(cmd).await;
        assert!(
            out.status.success(),
            "{api}: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let second = server.requests()[1].body.to_string();
        let expected = format!("data:image/png;base64,{}", "iVBORw0KGgo");
        assert!(
            second.contains(&expected),
            "{api}: the image is sent: {second}"
        );
        match api {
            "responses" => assert!(second.contains("input_image")),
            _ => assert!(
                second.contains("image_url") && second.contains("Images returned by tool call")
            ),
        }
        let events: Vec<Value> = common::json_lines(&out.stdout);
        let results: Vec<&Value> = events
            .iter()
            .filter(|e| e["kind"] == "tool_result")
            .collect();
        assert!(
            results[0]["payload"]["output"]
                .as_str()
                .unwrap()
                .contains("image/png, 2×3"),
            "{}",
            results[0]
        );
        assert!(
            results[1]["payload"]["output"]
                .as_str()
                .unwrap()
                .contains("not an image")
        );
        assert!(
            results[2]["payload"]["output"]
                .as_str()
                .unwrap()
                .contains(".."),
            "{}",
            results[2]
        );
        assert_eq!(
            results[0]["payload"]["images"].as_array().unwrap().len(),
            1,
            "the image is recorded"
        );
    }
}
