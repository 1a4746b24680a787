//! What one dataset has kept so far, small enough for millions of rows: the
//! memory behind streaming deduplication. Every row that leads its
//! near-duplicate group gets an entry (its key, text and label hashes, id,
//! file and line); every kept row's id is findable, so later rows can be
//! checked against all earlier ones without keeping the rows themselves.
//!
//! Layout: entries are columns of plain numbers, ids one string arena, and
//! both lookups are open-addressing tables of 8-byte slots, so nothing is
//! allocated per row. Per kept row that is the id's bytes, 28 bytes, 4 per
//! task and 21 to 32 bytes of slots: about 90 bytes with the sample's five
//! tasks and 14-byte ids, some 550 MB for the 6 million rows of a 2 GB
//! file. Entries are numbered by `u32`.
//!
//! Keys and ids are compared by 64-bit hash, ids then by their text, so an
//! id is never mistaken for another. Text and label hashes are 32-bit: they
//! only tell apart the kinds of duplicate (same text or not, labels that
//! agree or not) once the 64-bit keys matched.

use std::hash::Hasher;

/// Entry number in a [`DedupIndex`].
pub(crate) type Entry = u32;

/// A label hash for "no label": missing labels never conflict.
pub(crate) const NO_LABEL: u32 = 0;

/// A 64-bit hash of `bytes`, the same in every run (SipHash with fixed
/// keys).
pub(crate) fn hash64(bytes: &[u8]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    h.write(bytes);
    h.finish()
}

/// The 32-bit hash used for texts and labels, never [`NO_LABEL`].
pub(crate) fn hash32(bytes: &[u8]) -> u32 {
    let h = hash64(bytes);
    match (h ^ (h >> 32)) as u32 {
        NO_LABEL => 1,
        x => x,
    }
}

/// How a row compares with the entry of its near-duplicate key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Match {
    /// Same cleaned text (by hash).
    pub same_text: bool,
    /// Every task's labels equal, missing ones included.
    pub identical: bool,
    /// No task where both rows have a label and the labels differ.
    pub compatible: bool,
    /// Task positions labelled on one row only.
    pub one_sided: Vec<usize>,
    /// Task positions labelled on both rows, differently.
    pub differing: Vec<usize>,
}

/// What the key lookup needs of a row: its near-duplicate key, text and
/// one label hash per task ([`NO_LABEL`] where unlabelled).
pub(crate) struct Keyed<'a> {
    pub key: u64,
    pub text: u32,
    pub labels: &'a [u32],
}

pub(crate) struct DedupIndex {
    n_tasks: usize,
    ids: String,
    id_ends: Vec<usize>,
    file: Vec<u32>,
    line: Vec<u32>,
    /// Present only when deduplicating.
    key: Vec<u64>,
    text: Vec<u32>,
    /// `n_tasks` per entry.
    labels: Vec<u32>,
    by_key: Slots,
    by_id: Slots,
}

impl DedupIndex {
    pub fn new(n_tasks: usize) -> Self {
        DedupIndex {
            n_tasks,
            ids: String::new(),
            id_ends: Vec::new(),
            file: Vec::new(),
            line: Vec::new(),
            key: Vec::new(),
            text: Vec::new(),
            labels: Vec::new(),
            by_key: Slots::default(),
            by_id: Slots::default(),
        }
    }

    /// Entries so far: the next entry's number.
    pub fn len(&self) -> usize {
        self.id_ends.len()
    }

    /// A new entry, not yet findable. `keyed` is given when deduplicating,
    /// and then for every entry.
    pub fn push(&mut self, id: &str, file: u32, line: u32, keyed: Option<&Keyed>) -> Entry {
        let e = self.len() as Entry;
        self.ids.push_str(id);
        self.id_ends.push(self.ids.len());
        self.file.push(file);
        self.line.push(line);
        if let Some(k) = keyed {
            debug_assert_eq!(k.labels.len(), self.n_tasks);
            self.key.push(k.key);
            self.text.push(k.text);
            self.labels.extend_from_slice(k.labels);
        }
        e
    }

    pub fn id(&self, e: Entry) -> &str {
        let e = e as usize;
        let start = if e == 0 { 0 } else { self.id_ends[e - 1] };
        &self.ids[start..self.id_ends[e]]
    }

    /// `(file, line)` of the entry's row.
    pub fn at(&self, e: Entry) -> (u32, u32) {
        (self.file[e as usize], self.line[e as usize])
    }

    /// The entry leading the group of near-duplicate `key`, if any.
    pub fn find_key(&self, key: u64) -> Option<Entry> {
        self.by_key.find(key, |e| self.key[e as usize] == key)
    }

    /// Makes `e` the leader of its key's group; the key must be new.
    pub fn insert_key(&mut self, e: Entry) {
        let keys = &self.key;
        self.by_key
            .insert(keys[e as usize], e, |e| keys[e as usize]);
    }

    /// The entry that holds `id`, whose [`hash64`] is `hash`, if any.
    pub fn find_id(&self, id: &str, hash: u64) -> Option<Entry> {
        self.by_id.find(hash, |e| self.id(e) == id)
    }

    /// Makes `e`'s id, whose [`hash64`] is `hash`, findable; the id must
    /// be new.
    pub fn insert_id(&mut self, e: Entry, hash: u64) {
        let Self {
            by_id,
            ids,
            id_ends,
            ..
        } = self;
        by_id.insert(hash, e, |e| {
            let e = e as usize;
            let start = if e == 0 { 0 } else { id_ends[e - 1] };
            hash64(&ids.as_bytes()[start..id_ends[e]])
        });
    }

    /// Compares a row with entry `e` (which must have been pushed with its
    /// key), with the chunk-local rules' semantics: a missing label is
    /// "not annotated", never a conflict.
    pub fn compare(&self, e: Entry, row: &Keyed) -> Match {
        let e = e as usize;
        let kept = &self.labels[e * self.n_tasks..(e + 1) * self.n_tasks];
        let mut m = Match {
            same_text: self.text[e] == row.text,
            identical: true,
            compatible: true,
            one_sided: Vec::new(),
            differing: Vec::new(),
        };
        for (t, (&k, &d)) in kept.iter().zip(row.labels).enumerate() {
            if k == d {
                continue;
            }
            m.identical = false;
            if k == NO_LABEL || d == NO_LABEL {
                m.one_sided.push(t);
            } else {
                m.compatible = false;
                m.differing.push(t);
            }
        }
        m
    }

    /// Bytes held on the heap (capacities, not lengths).
    #[cfg(test)]
    pub fn heap_bytes(&self) -> usize {
        self.ids.capacity()
            + self.id_ends.capacity() * size_of::<usize>()
            + (self.file.capacity() + self.line.capacity() + self.text.capacity()) * 4
            + self.labels.capacity() * 4
            + self.key.capacity() * 8
            + self.by_key.heap_bytes()
            + self.by_id.heap_bytes()
    }
}

/// Open addressing with linear probing. A slot is `0` (empty) or the low
/// 32 bits of the hash (a tag that rules out most probes without touching
/// the entries) above `entry + 1`. The table never removes, and grows by
/// half when three quarters full.
#[derive(Default)]
struct Slots {
    slots: Vec<u64>,
    len: usize,
}

impl Slots {
    fn slot(hash: u64, e: Entry) -> u64 {
        (hash << 32) | (e as u64 + 1)
    }

    fn home(&self, hash: u64) -> usize {
        // The high bits pick the slot (any table size works), the low bits
        // are the tag.
        ((hash as u128 * self.slots.len() as u128) >> 64) as usize
    }

    fn find(&self, hash: u64, mut eq: impl FnMut(Entry) -> bool) -> Option<Entry> {
        if self.slots.is_empty() {
            return None;
        }
        let tag = hash << 32;
        let mut i = self.home(hash);
        loop {
            let s = self.slots[i];
            if s == 0 {
                return None;
            }
            if s & !0xffff_ffff == tag {
                let e = (s as u32).wrapping_sub(1);
                if eq(e) {
                    return Some(e);
                }
            }
            i += 1;
            if i == self.slots.len() {
                i = 0;
            }
        }
    }

    fn insert(&mut self, hash: u64, e: Entry, hash_of: impl Fn(Entry) -> u64) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            let cap = (self.slots.len() + self.slots.len() / 2).max(64);
            let old = std::mem::replace(&mut self.slots, vec![0; cap]);
            for s in old.into_iter().filter(|s| *s != 0) {
                let e = (s as u32).wrapping_sub(1);
                self.place(hash_of(e), e);
            }
        }
        self.place(hash, e);
        self.len += 1;
    }

    fn place(&mut self, hash: u64, e: Entry) {
        let mut i = self.home(hash);
        while self.slots[i] != 0 {
            i += 1;
            if i == self.slots.len() {
                i = 0;
            }
        }
        self.slots[i] = Self::slot(hash, e);
    }

    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.slots.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(key: &str, text: &str, labels: &[u32]) -> (u64, u32, Vec<u32>) {
        (
            hash64(key.as_bytes()),
            hash32(text.as_bytes()),
            labels.to_vec(),
        )
    }

    #[test]
    fn finds_keys_and_ids_it_was_given_and_nothing_else() {
        let mut index = DedupIndex::new(2);
        let n = 20_000u32;
        for i in 0..n {
            let (key, text, labels) = keyed(&format!("k{i}"), &format!("t{i}"), &[1, i % 3]);
            let k = Keyed {
                key,
                text,
                labels: &labels,
            };
            assert_eq!(index.find_key(key), None);
            let e = index.push(&format!("id-{i}"), i % 2, i + 1, Some(&k));
            assert_eq!(e, i);
            index.insert_key(e);
            // Every third id is left out of the id table.
            if i % 3 != 0 {
                index.insert_id(e, hash64(format!("id-{i}").as_bytes()));
            }
        }
        for i in (0..n).step_by(7) {
            let e = index.find_key(hash64(format!("k{i}").as_bytes()));
            assert_eq!(e, Some(i));
            assert_eq!(index.id(i), format!("id-{i}"));
            assert_eq!(index.at(i), (i % 2, i + 1));
            let id = format!("id-{i}");
            let by_id = index.find_id(&id, hash64(id.as_bytes()));
            assert_eq!(by_id, (i % 3 != 0).then_some(i), "{i}");
        }
        assert_eq!(index.find_key(hash64(b"k-unknown")), None);
        assert_eq!(index.find_id("id-", hash64(b"id-")), None);
        let id = format!("id-{n}");
        assert_eq!(index.find_id(&id, hash64(id.as_bytes())), None);
        // Same hash, other id: not found.
        assert_eq!(index.find_id("id-x", hash64(b"id-1")), None);
        // Two tasks, 8-byte ids: 44 bytes of columns and 8-byte slots at
        // most 3/4 full, plus the growth slack of every vector.
        let per_row = index.heap_bytes() / n as usize;
        assert!(per_row < 100, "{per_row} bytes per entry");
    }

    #[test]
    fn compare_tells_duplicates_near_duplicates_and_conflicts_apart() {
        let mut index = DedupIndex::new(3);
        let (key, text, labels) = keyed("goodvalue", "Good value", &[5, NO_LABEL, 7]);
        let kept = Keyed {
            key,
            text,
            labels: &labels,
        };
        let e = index.push("a", 0, 1, Some(&kept));
        index.insert_key(e);
        let row = |text: &str, labels: &[u32]| (hash32(text.as_bytes()), labels.to_vec());
        let cmp = |(text, labels): (u32, Vec<u32>)| {
            index.compare(
                e,
                &Keyed {
                    key,
                    text,
                    labels: &labels,
                },
            )
        };

        let m = cmp(row("Good value", &[5, NO_LABEL, 7]));
        assert!(m.same_text && m.identical && m.compatible);
        // A label on one side only agrees, but is not identical.
        let m = cmp(row("good value.", &[5, 9, NO_LABEL]));
        assert!(!m.same_text && !m.identical && m.compatible);
        assert_eq!(m.one_sided, [1, 2]);
        assert!(m.differing.is_empty());
        let m = cmp(row("GOOD VALUE", &[6, NO_LABEL, 8]));
        assert!(!m.compatible);
        assert_eq!(m.differing, [0, 2]);
    }

    #[test]
    fn hashes_are_stable_and_never_no_label() {
        assert_eq!(hash64(b"abc"), hash64(b"abc"));
        assert_ne!(hash64(b"abc"), hash64(b"abd"));
        assert_ne!(hash32(b""), NO_LABEL);
    }
}
