//! Reading the fuzzer's bytes as choices. Past the end every read is 0, so any input decodes.

pub struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input(data)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *first
    }

    /// One of `n` choices.
    pub fn pick(&mut self, n: u8) -> u8 {
        self.byte() % n
    }

    /// True about once in `n` reads.
    pub fn one_in(&mut self, n: u8) -> bool {
        self.pick(n) == 0
    }

    pub fn int(&mut self) -> i32 {
        i32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// Up to `max` bytes, never a NUL (C would stop there).
    pub fn text(&mut self, max: usize) -> Vec<u8> {
        let len = (self.byte() as usize).min(max).min(self.0.len());
        let (bytes, rest) = self.0.split_at(len);
        self.0 = rest;
        bytes.iter().take_while(|&&b| b != 0).copied().collect()
    }
}

/// Writes inputs for the seed corpus: the inverse of [`Input`], one choice at a time.
#[derive(Default)]
pub struct Script(pub Vec<u8>);

impl Script {
    pub fn op(mut self, op: u8, args: &[u8]) -> Script {
        self.0.push(op);
        self.0.extend_from_slice(args);
        self
    }
}
