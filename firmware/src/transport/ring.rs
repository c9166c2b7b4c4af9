//! Fixed-capacity byte FIFO (no allocation): the SDK transport's receive
//! ring (filled by the espconn receive callback, drained by `recv`) and its
//! send queue. Always built so the QEMU checks can exercise it.

/// FIFO of at most `N` bytes.
pub struct ByteRing<const N: usize> {
    buf: [u8; N],
    start: usize,
    len: usize,
}

impl<const N: usize> ByteRing<N> {
    pub const fn new() -> Self {
        ByteRing {
            buf: [0; N],
            start: 0,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn free(&self) -> usize {
        N - self.len
    }

    pub fn clear(&mut self) {
        self.start = 0;
        self.len = 0;
    }

    /// Appends all of `data`, or nothing when it does not fit (a partial
    /// MQTT packet would corrupt the stream). Returns whether it fitted.
    pub fn push(&mut self, data: &[u8]) -> bool {
        if data.len() > self.free() {
            return false;
        }
        for &b in data {
            self.buf[(self.start + self.len) % N] = b;
            self.len += 1;
        }
        true
    }

    /// Moves up to `out.len()` bytes out, oldest first; returns the count.
    pub fn pop(&mut self, out: &mut [u8]) -> usize {
        let n = self.len.min(out.len());
        for slot in out.iter_mut().take(n) {
            *slot = self.buf[self.start];
            self.start = (self.start + 1) % N;
        }
        self.len -= n;
        if self.len == 0 {
            self.start = 0;
        }
        n
    }
}

impl<const N: usize> Default for ByteRing<N> {
    fn default() -> Self {
        Self::new()
    }
}
