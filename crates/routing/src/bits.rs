//! A fixed-width bitset over agent slots: eligibility is the AND of a few of these.

/// One bit per agent slot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bits(Vec<u64>);

impl Bits {
    /// Grows to hold `slots` bits (new bits clear).
    pub fn grow(&mut self, slots: usize) {
        let words = slots.div_ceil(64);
        if self.0.len() < words {
            self.0.resize(words, 0);
        }
    }

    /// Word `i` (zero past the end).
    pub fn word(&self, i: usize) -> u64 {
        self.0.get(i).copied().unwrap_or(0)
    }

    /// The words (fewer than the slots when the high ones were never set: read as zero).
    pub fn words(&self) -> &[u64] {
        &self.0
    }

    /// A set made of these words.
    pub fn from_words(words: Vec<u64>) -> Self {
        Bits(words)
    }

    /// Every slot below `slots` set.
    pub fn full(slots: usize) -> Self {
        let mut words = vec![u64::MAX; slots / 64];
        if slots % 64 != 0 {
            words.push((1u64 << (slots % 64)) - 1);
        }
        Bits(words)
    }

    pub fn set(&mut self, slot: usize, on: bool) {
        self.grow(slot + 1);
        let (w, b) = (slot / 64, slot % 64);
        if on {
            self.0[w] |= 1 << b;
        } else {
            self.0[w] &= !(1 << b);
        }
    }

    pub fn get(&self, slot: usize) -> bool {
        self.0.get(slot / 64).is_some_and(|w| w & (1 << (slot % 64)) != 0)
    }

    /// Keeps only the bits also set in `other`.
    pub fn and_with(&mut self, other: &Bits) {
        for (i, w) in self.0.iter_mut().enumerate() {
            *w &= other.0.get(i).copied().unwrap_or(0);
        }
    }

    /// Keeps only the bits not set in `other`.
    pub fn and_not(&mut self, other: &Bits) {
        for (i, w) in self.0.iter_mut().enumerate() {
            *w &= !other.0.get(i).copied().unwrap_or(0);
        }
    }

    pub fn count(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The set slots, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(i * 64 + b)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Bits;

    #[test]
    fn set_and_iterate_across_words() {
        let mut a = Bits::default();
        for s in [0, 63, 64, 130] {
            a.set(s, true);
        }
        let mut b = Bits::default();
        for s in [63, 130, 200] {
            b.set(s, true);
        }
        assert_eq!(a.iter().collect::<Vec<_>>(), [0, 63, 64, 130]);
        let mut c = a.clone();
        c.and_with(&b);
        assert_eq!(c.iter().collect::<Vec<_>>(), [63, 130]);
        a.and_not(&b);
        assert_eq!(a.iter().collect::<Vec<_>>(), [0, 64]);
        assert_eq!(a.count(), 2);
        assert!(!a.get(200) && a.get(64));
        assert_eq!(Bits::full(65).count(), 65);
        assert_eq!(Bits::full(128).count(), 128);
    }
}
