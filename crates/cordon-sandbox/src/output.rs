//! Bounded output: a command may print without end, cordon keeps at most the start and the
//! end of it, and counts what it dropped between.

use std::collections::VecDeque;

/// The first `head` bytes and the last `tail` bytes of a stream, and how many in between
/// were dropped.
#[derive(Debug, Clone, Default)]
pub struct HeadTail {
    head: Vec<u8>,
    /// The tail, as the chunks it arrived in (the first may have been cut at its start).
    tail: VecDeque<Vec<u8>>,
    tail_len: usize,
    head_cap: usize,
    tail_cap: usize,
    total: u64,
}

impl HeadTail {
    /// Keeps up to `head` bytes from the start and `tail` from the end.
    pub fn new(head: usize, tail: usize) -> Self {
        HeadTail {
            head_cap: head,
            tail_cap: tail,
            ..HeadTail::default()
        }
    }

    /// Adds bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        let room = self.head_cap.saturating_sub(self.head.len());
        let (first, rest) = data.split_at(room.min(data.len()));
        self.head.extend_from_slice(first);
        if rest.is_empty() || self.tail_cap == 0 {
            return;
        }
        let rest = &rest[rest.len().saturating_sub(self.tail_cap)..];
        self.tail.push_back(rest.to_vec());
        self.tail_len += rest.len();
        // Whole chunks that fell out of the window go; the first one left is cut.
        while let Some(front) = self.tail.front_mut() {
            let over = self.tail_len - self.tail_cap.min(self.tail_len);
            if over == 0 {
                break;
            }
            if front.len() <= over {
                self.tail_len -= front.len();
                self.tail.pop_front();
            } else {
                front.drain(..over);
                self.tail_len -= over;
            }
        }
    }

    /// Every byte seen.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes dropped between the head and the tail.
    pub fn dropped(&self) -> u64 {
        self.total - (self.head.len() + self.tail_len) as u64
    }

    /// Whether nothing was seen.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The kept bytes, head then tail, and how many were dropped between them; empties it.
    pub fn take(&mut self) -> (Vec<u8>, Vec<u8>, u64) {
        let dropped = self.dropped();
        let head = std::mem::take(&mut self.head);
        let tail: Vec<u8> = std::mem::take(&mut self.tail)
            .into_iter()
            .flatten()
            .collect();
        self.tail_len = 0;
        self.total = 0;
        (head, tail, dropped)
    }

    /// The kept bytes as one buffer, with a line marking what was dropped; empties it.
    pub fn take_marked(&mut self) -> Vec<u8> {
        let (mut head, tail, dropped) = self.take();
        if dropped > 0 {
            head.extend_from_slice(
                format!("\n[cordon: {dropped} bytes of output were dropped here]\n").as_bytes(),
            );
        }
        head.extend_from_slice(&tail);
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_and_the_end_are_kept_and_the_middle_counted() {
        let mut b = HeadTail::new(4, 6);
        for chunk in [&b"abc"[..], b"defgh", b"ij", b"klmnopq"] {
            b.push(chunk);
        }
        assert_eq!(b.total(), 17);
        assert_eq!(b.dropped(), 7);
        let (head, tail, dropped) = b.take();
        assert_eq!(
            (head.as_slice(), tail.as_slice(), dropped),
            (&b"abcd"[..], &b"lmnopq"[..], 7)
        );
        assert!(b.is_empty());
        b.push(b"xy");
        assert_eq!(b.take_marked(), b"xy");
        b.push(&[b'z'; 100]);
        let marked = String::from_utf8(b.take_marked()).unwrap();
        assert!(
            marked.contains("90 bytes of output were dropped"),
            "{marked}"
        );
    }
}
