//! The per-sample ledger: which samples a network gets right, learns, forgets and memorizes, epoch by epoch.
//!
//! Layout (why it is fast): samples are packed 64 to a `u64` word. Every epoch appends two bit planes to
//! the history (correct-and-presented, presented), so history costs exactly 2 bits per sample-epoch
//! (plus padding of the last word). The per-sample counters (`times_correct`, `presentations`,
//! `forgetting_events`) are kept *bit-sliced*: counter plane `k` holds bit `k` of the count of 64
//! samples, and an epoch adds a whole word of increments with a ripple carry that almost always stops
//! after one or two planes. So an epoch touches ~1 byte per sample of input and a few bytes per 64
//! samples of state; the epoch indices (`first_learned`, start of the current correct run) are written
//! only where such an event happens. Counters are turned into `i32` arrays only when read.
//!
//! Samples are processed in blocks of [`BLOCK_WORDS`] words, in parallel with rayon when the ledger is
//! large. Every reduction is an integer sum, so results do not depend on the thread count.
//!
//! Semantics (epochs are 0-based indices of recorded epochs):
//! - a sample is *presented* in an epoch if it was part of that epoch's record (always, for
//!   [`Ledger::record_epoch`]; only the given indices, for [`Ledger::record_batch`]);
//! - `times_correct` / `presentations`: number of epochs it was presented and correct / presented;
//! - `first_learned`: first epoch it was presented and correct, `-1` if never;
//! - `forgetting_events`: number of correct → incorrect transitions between consecutive presentations
//!   (epochs where it was not presented are skipped: they neither count nor break the sequence);
//! - `learned_since`: if it was correct at its latest presentation, the epoch of the first presentation
//!   of the final unbroken run of correct presentations (it has been correct at every presentation from
//!   then through its latest); `-1` if it was wrong at its latest presentation or never presented.

use crate::error::{try_collect, try_reserve, try_vec, CoreError, Result};
use rayon::prelude::*;

/// Words per parallel block (64 words = 4096 samples).
pub const BLOCK_WORDS: usize = 64;
/// Below this many words (~64k samples) a pass stays on the calling thread: rayon's fork cost dominates.
const PAR_MIN_WORDS: usize = 1024;
/// Up to this many groups, per-group counts use bit masks (popcounts); above, a per-sample id lookup.
const MAX_MASK_GROUPS: usize = 64;
/// Most groups a ledger accepts (per-epoch counts hold 2 numbers per group).
pub const MAX_GROUPS: usize = 1 << 16;
/// Fixed columns of an epoch's counts row, before the per-group columns.
pub const COUNT_COLS: usize = 6;
/// Names of those columns ([`Ledger::epoch_counts`]); then `n_groups` columns of per-group presented
/// and `n_groups` of per-group correct.
pub const COUNT_COLUMNS: [&str; COUNT_COLS] = [
    "presented",
    "correct",
    "presented_flipped",
    "correct_flipped",
    "flipped_pred_clean",
    "flipped_with_pred",
];
/// Most samples a ledger holds (per-sample statistics are `i32`).
pub const MAX_SAMPLES: usize = i32::MAX as usize;
/// Most epochs a ledger records.
pub const MAX_EPOCHS: usize = i32::MAX as usize - 1;
/// Largest label (prediction or clean label) a ledger stores (as `i32`).
pub const MAX_LABEL: i64 = i32::MAX as i64;

/// A correctness (or flip-mask) element: `bool`; `u8` restricted to 0/1 (checked before anything is
/// applied); or [`NumpyBool`], a byte of a numpy bool array, true when nonzero.
pub trait BitLike: Copy + Sync + Send {
    /// Whether values other than 0 and 1 are an error ([`check_bits`]) rather than "true".
    const STRICT: bool;
    /// The element as 0 or 1.
    fn byte(self) -> u8;
    /// The elements as bytes, without a copy; a nonzero byte means true ([`pack64`] reads it so).
    fn bytes(s: &[Self]) -> &[u8];
}

/// One byte of a numpy bool array. numpy stores a bool in a byte and reads every nonzero byte as True
/// (a uint8 buffer viewed as bool holds any byte), so these bytes are not valid Rust `bool`s: the
/// binding passes such arrays as `&[NumpyBool]`, never as `&[bool]`.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NumpyBool(pub u8);

impl BitLike for NumpyBool {
    const STRICT: bool = false;
    #[inline(always)]
    fn byte(self) -> u8 {
        (self.0 != 0) as u8
    }
    #[inline(always)]
    fn bytes(s: &[NumpyBool]) -> &[u8] {
        // SAFETY: NumpyBool is a repr(transparent) u8; the slice borrows `s`.
        unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u8>(), s.len()) }
    }
}

impl NumpyBool {
    /// View numpy bool bytes (any values) as `NumpyBool`s, without a copy.
    pub fn from_bytes(s: &[u8]) -> &[NumpyBool] {
        // SAFETY: NumpyBool is a repr(transparent) u8, valid for every byte value.
        unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<NumpyBool>(), s.len()) }
    }
}

impl BitLike for bool {
    const STRICT: bool = true;
    #[inline(always)]
    fn byte(self) -> u8 {
        self as u8
    }
    #[inline(always)]
    fn bytes(s: &[bool]) -> &[u8] {
        // SAFETY: bool has the size and alignment of u8 and every bool is a valid u8 (0 or 1); the
        // returned slice borrows `s`, so it cannot outlive it or alias a mutable borrow.
        unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u8>(), s.len()) }
    }
}
impl BitLike for u8 {
    const STRICT: bool = true;
    #[inline(always)]
    fn byte(self) -> u8 {
        self
    }
    #[inline(always)]
    fn bytes(s: &[u8]) -> &[u8] {
        s
    }
}

/// An integer element of an index, prediction or label array, of any width and signedness.
pub trait IntLike: Copy + Sync + Send {
    /// The value as i64, or `None` when it does not fit (only possible for `u64`).
    fn to_i64(self) -> Option<i64>;
}
macro_rules! int_like {
    ($($t:ty),*) => {$(
        impl IntLike for $t {
            #[inline(always)]
            fn to_i64(self) -> Option<i64> {
                i64::try_from(self).ok()
            }
        }
    )*};
}
int_like!(i8, i16, i32, i64, u8, u16, u32, u64);

/// Words needed for `n` samples.
#[inline]
pub fn words_for(n: usize) -> usize {
    n.div_ceil(64)
}

/// Mask of the valid sample bits of word `w` in a ledger of `n` samples.
#[inline]
fn valid_mask(n: usize, w: usize) -> u64 {
    let rem = n - (w * 64).min(n);
    if rem >= 64 {
        u64::MAX
    } else {
        (1u64 << rem) - 1
    }
}

/// Each nonzero byte of `x` becomes 1, each zero byte stays 0 (SWAR, no carries between bytes).
#[inline(always)]
fn bytes_to_01(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // (x & 0x7f) + 0x7f sets a byte's top bit iff its low 7 bits are nonzero; `| x` adds its own top bit.
    ((((x & LOW7) + LOW7) | x) >> 7) & 0x0101_0101_0101_0101
}

/// Pack up to 64 bytes into a word: bit `k` is set iff byte `k` is nonzero.
#[inline(always)]
fn pack64(s: &[u8]) -> u64 {
    // For bytes that are 0 or 1, this multiply gathers the low bit of each of the 8 bytes into the top
    // byte (byte k → bit 56 + k) without carries reaching it; checked exhaustively in the tests.
    const GATHER: u64 = 0x0102_0408_1020_4080;
    let mut w = 0u64;
    let mut chunks = s.chunks_exact(8);
    let mut k = 0;
    for ch in &mut chunks {
        let mut b = [0u8; 8];
        b.copy_from_slice(ch);
        w |= (bytes_to_01(u64::from_le_bytes(b)).wrapping_mul(GATHER) >> 56) << (8 * k);
        k += 1;
    }
    for (j, x) in chunks.remainder().iter().enumerate() {
        w |= ((*x != 0) as u64) << (8 * k + j);
    }
    w
}

/// Add one increment word to a bit-sliced counter (`planes[k][j]` = bit k of the 64 counts of word j).
#[inline(always)]
fn add_sliced(planes: &mut [u64], mut carry: u64) {
    for p in planes.iter_mut() {
        if carry == 0 {
            return;
        }
        let t = *p & carry;
        *p ^= carry;
        carry = t;
    }
}

/// Write the value `e` into the lanes `m` of a bit-sliced value (`planes` must hold `e`).
#[inline(always)]
fn set_sliced(planes: &mut [u64], m: u64, e: usize) {
    if m == 0 {
        return;
    }
    for (k, p) in planes.iter_mut().enumerate() {
        if (e >> k) & 1 == 1 {
            *p |= m;
        } else {
            *p &= !m;
        }
    }
}

/// Unpack a bit-sliced counter's word `j` into up to 64 `i32` counts.
#[inline]
fn unslice(planes: &[u64], out: &mut [i32]) {
    // Transpose with a byte lookup table instead of iterating set bits: no data-dependent branches.
    // Up to 8 planes at a time are gathered into byte lanes (bit k of each lane's byte = plane k).
    out.iter_mut().for_each(|x| *x = 0);
    for (q, group) in planes.chunks(8).enumerate() {
        let mut acc = [0u64; 8];
        for (k, &w) in group.iter().enumerate() {
            for (b, a) in acc.iter_mut().enumerate() {
                *a |= SPREAD[((w >> (8 * b)) & 0xff) as usize] << k;
            }
        }
        for (o8, a) in out.chunks_mut(8).zip(acc) {
            for (o, v) in o8.iter_mut().zip(a.to_le_bytes()) {
                *o |= (v as i32) << (8 * q);
            }
        }
    }
}

/// `SPREAD[b]`: bit i of `b` moved to bit 0 of byte i.
static SPREAD: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        let mut i = 0;
        while i < 8 {
            t[b] |= (((b >> i) & 1) as u64) << (8 * i);
            i += 1;
        }
        b += 1;
    }
    t
};

/// Index of the "correct at its latest presentation" word in a word's state.
const LAST: usize = 0;
/// Index of the "correct at some presentation" word.
const EVER: usize = 1;
/// Bit-sliced fields of a word's state, each `planes` words long, after LAST and EVER.
const TIMES_CORRECT: usize = 0;
const PRESENTATIONS: usize = 1;
const FORGETTING: usize = 2;
/// Epoch index of the first correct presentation (valid where EVER).
const FIRST_LEARNED: usize = 3;
/// Epoch index of the first presentation of the current correct run (valid where LAST).
const RUN_START: usize = 4;
const N_FIELDS: usize = 5;

/// State of 64 words (4096 samples), word-interleaved: all the state of one word is contiguous
/// (`[LAST, EVER, field 0 planes.., field 1 planes.., ...]`), so a pass reads it as one stream.
#[derive(Clone, Debug)]
struct Block {
    planes: usize,
    s: Vec<u64>,
}

#[inline(always)]
fn field(f: usize, planes: usize) -> std::ops::Range<usize> {
    2 + f * planes..2 + (f + 1) * planes
}

impl Block {
    fn try_new() -> Result<Self> {
        Ok(Block {
            planes: 0,
            s: try_vec(BLOCK_WORDS * 2, 0, "the ledger's per-sample state")?,
        })
    }
    fn stride(&self) -> usize {
        2 + N_FIELDS * self.planes
    }
    fn word(&self, j: usize) -> &[u64] {
        let st = self.stride();
        self.s.get(j * st..(j + 1) * st).unwrap_or(&[])
    }
    /// Grow every bit-sliced field to `planes` planes (new high planes are zero). On an allocation
    /// failure the block is unchanged.
    fn ensure_planes(&mut self, planes: usize) -> Result<()> {
        if planes <= self.planes {
            return Ok(());
        }
        let (old_p, old_st) = (self.planes, self.stride());
        let new_st = 2 + N_FIELDS * planes;
        let mut s = try_vec(
            BLOCK_WORDS * new_st,
            0u64,
            "the ledger's per-sample counters",
        )?;
        for (dst, src) in s.chunks_mut(new_st).zip(self.s.chunks(old_st)) {
            dst[..2].copy_from_slice(&src[..2]);
            for f in 0..N_FIELDS {
                dst[field(f, planes)][..old_p].copy_from_slice(&src[field(f, old_p)]);
            }
        }
        self.planes = planes;
        self.s = s;
        Ok(())
    }
}

/// One parallel work item of an epoch pass: block index, its state, its history words (correct, presented).
type BlockItem<'a> = (usize, ((&'a mut Block, &'a mut [u64]), &'a mut [u64]));

/// How per-group counts are taken.
#[derive(Clone, Debug)]
enum Groups {
    None,
    /// `masks[w * n_groups + g]`: samples of word `w` in group `g`.
    Masks {
        n_groups: usize,
        masks: Vec<u64>,
    },
    /// Group id per sample, for many groups.
    Ids {
        n_groups: usize,
        ids: Vec<u32>,
    },
}

impl Groups {
    fn n_groups(&self) -> usize {
        match self {
            Groups::None => 0,
            Groups::Masks { n_groups, .. } | Groups::Ids { n_groups, .. } => *n_groups,
        }
    }
}

/// Counts of one epoch over a range of words (summed across blocks).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Counts {
    presented: i64,
    correct: i64,
    presented_flipped: i64,
    correct_flipped: i64,
    group_presented: Vec<i64>,
    group_correct: Vec<i64>,
}

impl Counts {
    fn zero(g: usize) -> Self {
        Counts {
            presented: 0,
            correct: 0,
            presented_flipped: 0,
            correct_flipped: 0,
            group_presented: vec![0; g],
            group_correct: vec![0; g],
        }
    }
    fn merge(mut self, o: Counts) -> Counts {
        self.presented += o.presented;
        self.correct += o.correct;
        self.presented_flipped += o.presented_flipped;
        self.correct_flipped += o.correct_flipped;
        for (a, b) in self.group_presented.iter_mut().zip(&o.group_presented) {
            *a += b;
        }
        for (a, b) in self.group_correct.iter_mut().zip(&o.group_correct) {
            *a += b;
        }
        self
    }
}

/// The batch-mode epoch being assembled by [`Ledger::record_batch`] until [`Ledger::end_epoch`].
#[derive(Clone, Debug)]
struct Pending {
    correct: Vec<u64>,
    presented: Vec<u64>,
    /// Predictions of presented samples (`Some` iff the epoch's batches carry predictions).
    pred: Option<Vec<i32>>,
    count: usize,
}

/// The per-sample ledger (see the module documentation for the exact semantics).
#[derive(Clone, Debug)]
pub struct Ledger {
    n: usize,
    n_epochs: usize,
    blocks: Vec<Block>,
    /// `n_epochs * words` words each: epoch-major bit planes.
    hist_correct: Vec<u64>,
    hist_presented: Vec<u64>,
    groups: Groups,
    /// Label-flip mask, packed (`None`: no flipped samples known).
    flipped: Option<Vec<u64>>,
    clean_labels: Option<Vec<i32>>,
    last_pred: Option<Vec<i32>>,
    /// `n_epochs` rows of `COUNT_COLS + 2 * n_groups` columns; see [`Ledger::epoch_counts`].
    counts: Vec<i64>,
    pending: Option<Pending>,
}

fn check_label<T: IntLike>(x: T, what: &str, i: usize) -> Result<i32> {
    match x.to_i64() {
        Some(v) if (0..=MAX_LABEL).contains(&v) => Ok(v as i32),
        _ => Err(CoreError::value(format!(
            "{what}[{i}] is out of range: labels must be integers in [0, {}]",
            i32::MAX
        ))),
    }
}

/// Validate a whole label array, returning the first offending element's error.
fn check_labels<T: IntLike>(xs: &[T], what: &str) -> Result<()> {
    // A cheap vectorizable scan first; the message path only runs on failure.
    let ok = xs
        .iter()
        .all(|&x| matches!(x.to_i64(), Some(v) if (0..=MAX_LABEL).contains(&v)));
    if ok {
        return Ok(());
    }
    for (i, &x) in xs.iter().enumerate() {
        check_label(x, what, i)?;
    }
    Ok(())
}

/// For a strict element type (`u8`), every value must be 0 or 1; others accept every byte.
fn check_bits<T: BitLike>(xs: &[T], what: &str) -> Result<()> {
    if !T::STRICT {
        return Ok(());
    }
    let bytes = T::bytes(xs);
    if bytes.iter().all(|&x| x <= 1) {
        return Ok(());
    }
    let i = bytes.iter().position(|&x| x > 1).unwrap_or(0);
    Err(CoreError::value(format!(
        "{what}[{i}] = {}: a uint8 array must hold only 0 or 1",
        bytes.get(i).copied().unwrap_or(0)
    )))
}

impl Ledger {
    /// A ledger for `n` samples. `groups[i] < n_groups` is sample i's group; `flipped[i]` marks a
    /// label-flipped sample.
    pub fn new<F: BitLike>(
        n: usize,
        groups: Option<&[i64]>,
        n_groups: usize,
        flipped: Option<&[F]>,
    ) -> Result<Self> {
        if n == 0 {
            return Err(CoreError::value("n_samples must be >= 1"));
        }
        if n > MAX_SAMPLES {
            return Err(CoreError::value(format!(
                "n_samples must be in [1, {MAX_SAMPLES}], got {n}"
            )));
        }
        let words = words_for(n);
        let groups = match groups {
            None => Groups::None,
            Some(g) => {
                if g.len() != n {
                    return Err(CoreError::value(format!(
                        "groups has length {}, expected n_samples = {n}",
                        g.len()
                    )));
                }
                if n_groups == 0 || n_groups > MAX_GROUPS {
                    return Err(CoreError::value(format!(
                        "n_groups must be in [1, {MAX_GROUPS}], got {n_groups}"
                    )));
                }
                if let Some(i) = g.iter().position(|&x| x < 0 || x as u64 >= n_groups as u64) {
                    return Err(CoreError::value(format!(
                        "groups[{i}] = {} is out of range: group ids must be in [0, {})",
                        g[i], n_groups
                    )));
                }
                if n_groups <= MAX_MASK_GROUPS {
                    let mut masks = try_vec(words * n_groups, 0u64, "the group masks")?;
                    for (i, &x) in g.iter().enumerate() {
                        masks[(i / 64) * n_groups + x as usize] |= 1u64 << (i % 64);
                    }
                    Groups::Masks { n_groups, masks }
                } else {
                    Groups::Ids {
                        n_groups,
                        ids: try_collect(g.iter().map(|&x| x as u32), "the group ids")?,
                    }
                }
            }
        };
        let flipped = match flipped {
            None => None,
            Some(f) => {
                if f.len() != n {
                    return Err(CoreError::value(format!(
                        "flipped has length {}, expected n_samples = {n}",
                        f.len()
                    )));
                }
                check_bits(f, "flipped")?;
                Some(try_collect(
                    BitLike::bytes(f).chunks(64).map(pack64),
                    "the flip mask",
                )?)
            }
        };
        let n_blocks = words.div_ceil(BLOCK_WORDS);
        let mut blocks = Vec::new();
        try_reserve(&mut blocks, n_blocks, "the ledger's per-sample state")?;
        for _ in 0..n_blocks {
            blocks.push(Block::try_new()?);
        }
        Ok(Ledger {
            n,
            n_epochs: 0,
            blocks,
            hist_correct: Vec::new(),
            hist_presented: Vec::new(),
            groups,
            flipped,
            clean_labels: None,
            last_pred: None,
            counts: Vec::new(),
            pending: None,
        })
    }

    /// Number of samples.
    pub fn n_samples(&self) -> usize {
        self.n
    }
    /// Number of recorded (closed) epochs.
    pub fn n_epochs(&self) -> usize {
        self.n_epochs
    }
    /// Number of groups (0 without groups).
    pub fn n_groups(&self) -> usize {
        self.groups.n_groups()
    }
    /// 64-sample words per epoch of history.
    pub fn words(&self) -> usize {
        words_for(self.n)
    }
    /// Columns of a row of [`Ledger::epoch_counts`].
    pub fn count_cols(&self) -> usize {
        COUNT_COLS + 2 * self.n_groups()
    }
    /// Whether `record_batch` has started an epoch that `end_epoch` has not closed.
    pub fn epoch_open(&self) -> bool {
        self.pending.is_some()
    }
    /// Bytes of the bit-packed history (both planes).
    pub fn history_nbytes(&self) -> usize {
        (self.hist_correct.len() + self.hist_presented.len()) * 8
    }

    fn check_can_add_epoch(&self) -> Result<()> {
        if self.n_epochs >= MAX_EPOCHS {
            return Err(CoreError::value(format!(
                "the ledger holds the maximum number of epochs ({MAX_EPOCHS})"
            )));
        }
        Ok(())
    }

    /// Record a whole epoch: every sample is presented; `correct[i]` says whether sample i was right
    /// (against its observed label); `pred` are optional predicted labels.
    pub fn record_epoch<B: BitLike, P: IntLike>(
        &mut self,
        correct: &[B],
        pred: Option<&[P]>,
    ) -> Result<()> {
        if self.pending.is_some() {
            return Err(CoreError::value(
                "an epoch is open (record_batch was called): call end_epoch() before record_epoch()",
            ));
        }
        self.check_can_add_epoch()?;
        if correct.len() != self.n {
            return Err(CoreError::value(format!(
                "correct has length {}, expected n_samples = {}",
                correct.len(),
                self.n
            )));
        }
        check_bits(correct, "correct")?;
        if let Some(p) = pred {
            if p.len() != self.n {
                return Err(CoreError::value(format!(
                    "pred has length {}, expected n_samples = {}",
                    p.len(),
                    self.n
                )));
            }
            check_labels(p, "pred")?;
        }
        self.reserve_epoch(pred.is_some())?;
        let n = self.n;
        let correct = B::bytes(correct);
        let pc = self.apply(|w| {
            let lo = w * 64;
            let hi = (lo + 64).min(n);
            (pack64(&correct[lo..hi]), valid_mask(n, w))
        });
        let (num, den) = match pred {
            Some(p) => self.ingest_pred_full(p),
            None => (0, -1),
        };
        self.finish_epoch(pc, num, den);
        Ok(())
    }

    /// Record one batch of the open epoch (opening one if needed): `indices` are sample ids (no id
    /// twice in one epoch), `correct` / `pred` are aligned with `indices`.
    pub fn record_batch<I: IntLike, B: BitLike, P: IntLike>(
        &mut self,
        indices: &[I],
        correct: &[B],
        pred: Option<&[P]>,
    ) -> Result<()> {
        self.check_can_add_epoch()?;
        let k = indices.len();
        if correct.len() != k {
            return Err(CoreError::value(format!(
                "correct has length {}, expected len(indices) = {k}",
                correct.len()
            )));
        }
        check_bits(correct, "correct")?;
        if let Some(p) = pred {
            if p.len() != k {
                return Err(CoreError::value(format!(
                    "pred has length {}, expected len(indices) = {k}",
                    p.len()
                )));
            }
            check_labels(p, "pred")?;
        }
        if let Some(pd) = &self.pending {
            if pd.count > 0 && pd.pred.is_some() != pred.is_some() {
                return Err(CoreError::value(if pred.is_some() {
                    "pred given, but earlier batches of this epoch had none: give pred for every batch of an epoch or for none"
                } else {
                    "pred missing, but earlier batches of this epoch had it: give pred for every batch of an epoch or for none"
                }));
            }
        }
        let n = self.n;
        for (j, &x) in indices.iter().enumerate() {
            match x.to_i64() {
                Some(v) if v >= 0 && (v as u64) < n as u64 => {}
                _ => {
                    return Err(CoreError::value(format!(
                        "indices[{j}] is out of range: sample indices must be in [0, {n})"
                    )))
                }
            }
        }
        let words = self.words();
        if self.pending.is_none() {
            self.pending = Some(Pending {
                correct: try_vec(words, 0, "the open epoch")?,
                presented: try_vec(words, 0, "the open epoch")?,
                pred: None,
                count: 0,
            });
        }
        if pred.is_some() && self.pending.as_ref().is_some_and(|pd| pd.pred.is_none()) {
            let buf = match try_vec(n, 0, "the open epoch's predictions") {
                Ok(buf) => buf,
                Err(e) => {
                    if self.pending.as_ref().is_some_and(|pd| pd.count == 0) {
                        self.pending = None;
                    }
                    return Err(e);
                }
            };
            if let Some(pd) = self.pending.as_mut() {
                pd.pred = Some(buf);
            }
        }
        let Some(pd) = self.pending.as_mut() else {
            return Err(CoreError::value("internal error: no open epoch"));
        };
        // Mark presented bits, detecting repeats; undo on the first repeat so nothing changes.
        let mut dup = None;
        for (j, &x) in indices.iter().enumerate() {
            let i = x.to_i64().unwrap_or(0) as usize;
            let bit = 1u64 << (i % 64);
            if pd.presented[i / 64] & bit != 0 {
                dup = Some((j, i));
                break;
            }
            pd.presented[i / 64] |= bit;
        }
        if let Some((j, i)) = dup {
            for &x in &indices[..j] {
                let i2 = x.to_i64().unwrap_or(0) as usize;
                pd.presented[i2 / 64] &= !(1u64 << (i2 % 64));
            }
            let within = indices[..j].iter().any(|&x| x.to_i64() == Some(i as i64));
            let msg = if within {
                format!("indices[{j}] = {i} is repeated within this batch: each sample at most once per epoch")
            } else {
                format!(
                    "indices[{j}] = {i} was already recorded in an earlier batch of this epoch: each sample at most once per epoch"
                )
            };
            if pd.count == 0 {
                self.pending = None;
            }
            return Err(CoreError::value(msg));
        }
        for (&x, &c) in indices.iter().zip(correct) {
            let i = x.to_i64().unwrap_or(0) as usize;
            pd.correct[i / 64] |= ((c.byte() & 1) as u64) << (i % 64);
        }
        if let (Some(p), Some(buf)) = (pred, pd.pred.as_mut()) {
            for (&x, &v) in indices.iter().zip(p) {
                let i = x.to_i64().unwrap_or(0) as usize;
                buf[i] = v.to_i64().unwrap_or(0) as i32;
            }
        }
        pd.count += k;
        if pd.count == 0 {
            // An empty batch opens nothing.
            self.pending = None;
        }
        Ok(())
    }

    /// Close the epoch assembled by `record_batch`; samples not in any batch are "not presented".
    pub fn end_epoch(&mut self) -> Result<()> {
        if self.pending.as_ref().is_some_and(|pd| pd.count > 0) {
            let with_pred = self.pending.as_ref().is_some_and(|pd| pd.pred.is_some());
            self.reserve_epoch(with_pred)?;
        }
        let pd = match self.pending.take() {
            Some(pd) if pd.count > 0 => pd,
            other => {
                self.pending = other;
                return Err(CoreError::value(
                    "end_epoch() called with nothing recorded: call record_batch() with at least one sample first",
                ));
            }
        };
        let pc = self.apply(|w| (pd.correct[w], pd.presented[w]));
        let (num, den) = match &pd.pred {
            Some(p) => self.ingest_pred_partial(p, &pd.presented),
            None => (0, -1),
        };
        self.finish_epoch(pc, num, den);
        Ok(())
    }

    /// Clean (pre-noise) labels, used from the next epoch on to count flipped samples predicted as
    /// their clean label.
    pub fn set_clean_labels<T: IntLike>(&mut self, y: &[T]) -> Result<()> {
        if y.len() != self.n {
            return Err(CoreError::value(format!(
                "y_clean has length {}, expected n_samples = {}",
                y.len(),
                self.n
            )));
        }
        check_labels(y, "y_clean")?;
        self.clean_labels = Some(try_collect(
            y.iter().map(|v| v.to_i64().unwrap_or(0) as i32),
            "the clean labels",
        )?);
        Ok(())
    }

    /// Allocate everything recording one more epoch needs (history words, count row, counter planes,
    /// and `last_pred` when the epoch carries predictions), so that [`Ledger::apply`] and the
    /// prediction ingest cannot fail halfway: on an allocation failure nothing observable changes.
    fn reserve_epoch(&mut self, with_pred: bool) -> Result<()> {
        let nw = self.words();
        try_reserve(&mut self.hist_correct, nw, "the ledger's history")?;
        try_reserve(&mut self.hist_presented, nw, "the ledger's history")?;
        let cols = self.count_cols();
        try_reserve(&mut self.counts, cols, "the per-epoch counts")?;
        let planes = (usize::BITS - (self.n_epochs + 1).leading_zeros()) as usize;
        for blk in self.blocks.iter_mut() {
            blk.ensure_planes(planes)?;
        }
        if with_pred && self.last_pred.is_none() {
            self.last_pred = Some(try_vec(self.n, -1, "the last predictions")?);
        }
        Ok(())
    }

    fn finish_epoch(&mut self, c: Counts, pc_num: i64, pc_den: i64) {
        self.counts.extend_from_slice(&[
            c.presented,
            c.correct,
            c.presented_flipped,
            c.correct_flipped,
            pc_num,
            pc_den,
        ]);
        self.counts.extend_from_slice(&c.group_presented);
        self.counts.extend_from_slice(&c.group_correct);
        self.n_epochs += 1;
    }

    /// Store predictions of a full epoch; returns (flipped predicted clean, flipped) or (0, -1).
    fn ingest_pred_full<P: IntLike>(&mut self, pred: &[P]) -> (i64, i64) {
        let n = self.n;
        let Some(lp) = self.last_pred.as_mut() else {
            return (0, -1); // reserve_epoch allocated it
        };
        let conv = |(d, s): (&mut [i32], &[P])| {
            for (a, b) in d.iter_mut().zip(s) {
                *a = b.to_i64().unwrap_or(0) as i32;
            }
        };
        let chunk = BLOCK_WORDS * 64;
        if n >= PAR_MIN_WORDS * 64 {
            lp.par_chunks_mut(chunk)
                .zip(pred.par_chunks(chunk))
                .for_each(conv);
        } else {
            lp.chunks_mut(chunk).zip(pred.chunks(chunk)).for_each(conv);
        }
        self.count_pred_clean(|_| u64::MAX)
    }

    fn ingest_pred_partial(&mut self, pred: &[i32], presented: &[u64]) -> (i64, i64) {
        let Some(lp) = self.last_pred.as_mut() else {
            return (0, -1); // reserve_epoch allocated it
        };
        for (w, &p) in presented.iter().enumerate() {
            let mut m = p;
            while m != 0 {
                let i = w * 64 + m.trailing_zeros() as usize;
                if let (Some(d), Some(s)) = (lp.get_mut(i), pred.get(i)) {
                    *d = *s;
                }
                m &= m - 1;
            }
        }
        self.count_pred_clean(|w| presented.get(w).copied().unwrap_or(0))
    }

    /// Among flipped presented samples (presented mask per word from `pres`), how many have
    /// `last_pred == clean label`; `(0, -1)` without flip mask or clean labels.
    fn count_pred_clean(&self, pres: impl Fn(usize) -> u64 + Sync) -> (i64, i64) {
        let (Some(f), Some(y), Some(lp)) = (&self.flipped, &self.clean_labels, &self.last_pred)
        else {
            return (0, -1);
        };
        let word = |w: usize| -> (i64, i64) {
            let mut m = f[w] & pres(w);
            let den = m.count_ones() as i64;
            let mut num = 0;
            while m != 0 {
                let i = w * 64 + m.trailing_zeros() as usize;
                num += (lp.get(i) == y.get(i)) as i64;
                m &= m - 1;
            }
            (num, den)
        };
        let add = |a: (i64, i64), b: (i64, i64)| (a.0 + b.0, a.1 + b.1);
        if f.len() >= PAR_MIN_WORDS {
            (0..f.len())
                .into_par_iter()
                .map(word)
                .reduce(|| (0, 0), add)
        } else {
            (0..f.len()).map(word).fold((0, 0), add)
        }
    }

    /// One pass over all words: update bit state, counters, event epochs and history; return counts.
    /// `words(w)` gives (correct, presented) of word w; correct bits outside `presented` are ignored.
    /// Call [`Ledger::reserve_epoch`] first: this pass allocates nothing that can fail.
    fn apply(&mut self, words: impl Fn(usize) -> (u64, u64) + Sync) -> Counts {
        let nw = self.words();
        let epoch = self.n_epochs;
        let planes = (usize::BITS - (self.n_epochs + 1).leading_zeros()) as usize;
        let start = self.hist_correct.len();
        self.hist_correct.resize(start + nw, 0);
        self.hist_presented.resize(start + nw, 0);
        let hc = &mut self.hist_correct[start..];
        let hp = &mut self.hist_presented[start..];
        let groups = &self.groups;
        let flipped = self.flipped.as_deref();
        let g = groups.n_groups();

        // Counts accumulate into one `Counts` per rayon job (not per block): many groups stay cheap.
        let work = |mut cnt: Counts, (b, ((blk, hc), hp)): BlockItem<'_>| {
            debug_assert!(blk.planes >= planes, "reserve_epoch grows the planes");
            let planes = blk.planes;
            let stride = blk.stride();
            let state = &mut blk.s[..];
            for j in 0..hc.len() {
                let w = b * BLOCK_WORDS + j;
                let (c0, p) = words(w);
                let c = c0 & p;
                let st = &mut state[j * stride..(j + 1) * stride];
                let (last, ever) = (st[LAST], st[EVER]);
                add_sliced(&mut st[field(PRESENTATIONS, planes)], p);
                add_sliced(&mut st[field(TIMES_CORRECT, planes)], c);
                add_sliced(&mut st[field(FORGETTING, planes)], p & !c & last);
                set_sliced(&mut st[field(FIRST_LEARNED, planes)], c & !ever, epoch);
                set_sliced(&mut st[field(RUN_START, planes)], c & !last, epoch);
                st[EVER] = ever | c;
                st[LAST] = (last & !p) | c;
                hc[j] = c;
                hp[j] = p;
                cnt.presented += p.count_ones() as i64;
                cnt.correct += c.count_ones() as i64;
                if let Some(f) = flipped {
                    let fw = f.get(w).copied().unwrap_or(0);
                    cnt.presented_flipped += (p & fw).count_ones() as i64;
                    cnt.correct_flipped += (c & fw).count_ones() as i64;
                }
                match groups {
                    Groups::None => {}
                    Groups::Masks { n_groups, masks } => {
                        let ms = masks.get(w * n_groups..(w + 1) * n_groups).unwrap_or(&[]);
                        for (k, &m) in ms.iter().enumerate() {
                            cnt.group_presented[k] += (p & m).count_ones() as i64;
                            cnt.group_correct[k] += (c & m).count_ones() as i64;
                        }
                    }
                    Groups::Ids { ids, .. } => {
                        let mut m = p;
                        while m != 0 {
                            let bit = m.trailing_zeros();
                            if let Some(&gid) = ids.get(w * 64 + bit as usize) {
                                if let (Some(a), Some(b)) = (
                                    cnt.group_presented.get_mut(gid as usize),
                                    cnt.group_correct.get_mut(gid as usize),
                                ) {
                                    *a += 1;
                                    *b += ((c >> bit) & 1) as i64;
                                }
                            }
                            m &= m - 1;
                        }
                    }
                }
            }
            cnt
        };

        if nw >= PAR_MIN_WORDS {
            self.blocks
                .par_iter_mut()
                .zip(hc.par_chunks_mut(BLOCK_WORDS))
                .zip(hp.par_chunks_mut(BLOCK_WORDS))
                .enumerate()
                .fold(|| Counts::zero(g), work)
                .reduce(|| Counts::zero(g), Counts::merge)
        } else {
            self.blocks
                .iter_mut()
                .zip(hc.chunks_mut(BLOCK_WORDS))
                .zip(hp.chunks_mut(BLOCK_WORDS))
                .enumerate()
                .fold(Counts::zero(g), work)
        }
    }

    /// Unpack a bit-sliced counter of every block into `i32` per sample.
    fn unslice_all(&self, f_idx: usize) -> Result<Vec<i32>> {
        let mut out = try_vec(self.n, 0i32, "a per-sample statistic")?;
        let spb = BLOCK_WORDS * 64;
        let f = |(blk, o): (&Block, &mut [i32])| {
            for (j, oc) in o.chunks_mut(64).enumerate() {
                let w = blk.word(j);
                unslice(w.get(field(f_idx, blk.planes)).unwrap_or(&[]), oc);
            }
        };
        if self.words() >= PAR_MIN_WORDS {
            self.blocks
                .par_iter()
                .zip(out.par_chunks_mut(spb))
                .for_each(f);
        } else {
            self.blocks.iter().zip(out.chunks_mut(spb)).for_each(f);
        }
        Ok(out)
    }

    fn bit_state(&self, idx: usize) -> Result<Vec<bool>> {
        let bits = (0..self.n).map(|i| {
            let (b, j) = (i / (BLOCK_WORDS * 64), (i / 64) % BLOCK_WORDS);
            self.blocks
                .get(b)
                .and_then(|blk| blk.word(j).get(idx))
                .map(|w| (w >> (i % 64)) & 1 == 1)
                .unwrap_or(false)
        });
        try_collect(bits, "a per-sample flag")
    }

    /// Per sample: epochs in which it was presented and correct.
    pub fn times_correct(&self) -> Result<Vec<i32>> {
        self.unslice_all(TIMES_CORRECT)
    }
    /// Per sample: epochs in which it was presented.
    pub fn presentations(&self) -> Result<Vec<i32>> {
        self.unslice_all(PRESENTATIONS)
    }
    /// Per sample: correct → incorrect transitions between consecutive presentations.
    pub fn forgetting_events(&self) -> Result<Vec<i32>> {
        self.unslice_all(FORGETTING)
    }
    /// Bit-sliced epoch values where `valid` says so, else -1.
    fn masked_values(&self, f_idx: usize, valid: usize) -> Result<Vec<i32>> {
        let mut out = self.unslice_all(f_idx)?;
        let spb = BLOCK_WORDS * 64;
        let f = |(blk, o): (&Block, &mut [i32])| {
            for (j, oc) in o.chunks_mut(64).enumerate() {
                let v = blk.word(j).get(valid).copied().unwrap_or(0);
                for (k, x) in oc.iter_mut().enumerate() {
                    *x = if (v >> k) & 1 == 1 { *x } else { -1 };
                }
            }
        };
        if self.words() >= PAR_MIN_WORDS {
            self.blocks
                .par_iter()
                .zip(out.par_chunks_mut(spb))
                .for_each(f);
        } else {
            self.blocks.iter().zip(out.chunks_mut(spb)).for_each(f);
        }
        Ok(out)
    }
    /// Per sample: first epoch it was presented and correct, -1 if never.
    pub fn first_learned(&self) -> Result<Vec<i32>> {
        self.masked_values(FIRST_LEARNED, EVER)
    }
    /// Per sample: never correct at any presentation.
    pub fn never_learned(&self) -> Result<Vec<bool>> {
        let mut ever = self.bit_state(EVER)?;
        ever.iter_mut().for_each(|x| *x = !*x);
        Ok(ever)
    }
    /// Per sample: first epoch of the final unbroken run of correct presentations; -1 if wrong at its
    /// latest presentation or never presented.
    pub fn learned_since(&self) -> Result<Vec<i32>> {
        self.masked_values(RUN_START, LAST)
    }
    /// Prediction at each sample's latest presentation that carried one (-1: never); `None` before any.
    pub fn last_pred(&self) -> Option<&[i32]> {
        self.last_pred.as_deref()
    }
    /// The clean labels given to [`Ledger::set_clean_labels`].
    pub fn clean_labels(&self) -> Option<&[i32]> {
        self.clean_labels.as_deref()
    }
    /// Per epoch: `[presented, correct, presented_flipped, correct_flipped, flipped_pred_clean,
    /// flipped_with_pred (-1: not computable), group_presented[G], group_correct[G]]`.
    pub fn epoch_counts(&self) -> &[i64] {
        &self.counts
    }
    /// Bit-packed history planes, epoch-major, `words()` words per epoch: (correct, presented).
    pub fn history_words(&self) -> (&[u64], &[u64]) {
        (&self.hist_correct, &self.hist_presented)
    }
    /// The group id of every sample (`None` without groups).
    pub fn group_ids(&self) -> Result<Option<Vec<i64>>> {
        match &self.groups {
            Groups::None => Ok(None),
            Groups::Ids { ids, .. } => Ok(Some(try_collect(
                ids.iter().map(|&x| x as i64),
                "the group ids",
            )?)),
            Groups::Masks { n_groups, masks } => {
                let ids = (0..self.n).map(|i| {
                    let ms = &masks[(i / 64) * n_groups..(i / 64 + 1) * n_groups];
                    ms.iter()
                        .position(|m| (m >> (i % 64)) & 1 == 1)
                        .unwrap_or(0) as i64
                });
                Ok(Some(try_collect(ids, "the group ids")?))
            }
        }
    }
    /// The label-flip mask, unpacked.
    pub fn flipped(&self) -> Result<Option<Vec<bool>>> {
        match &self.flipped {
            None => Ok(None),
            Some(f) => {
                let bits = (0..self.n).map(|i| (f[i / 64] >> (i % 64)) & 1 == 1);
                Ok(Some(try_collect(bits, "the flip mask")?))
            }
        }
    }

    /// Unpack one history plane into a bool matrix (epochs × n, row-major).
    pub fn unpack_history(&self, presented: bool) -> Result<Vec<bool>> {
        let src = if presented {
            &self.hist_presented
        } else {
            &self.hist_correct
        };
        let (n, nw) = (self.n, self.words());
        let len = self
            .n_epochs
            .checked_mul(n)
            .ok_or_else(|| CoreError::memory::<bool>(usize::MAX, "the unpacked history"))?;
        let mut out = try_vec(len, false, "the unpacked history")?;
        let f = |(row, ws): (&mut [bool], &[u64])| {
            for (i, x) in row.iter_mut().enumerate() {
                *x = (ws[i / 64] >> (i % 64)) & 1 == 1;
            }
        };
        if n * self.n_epochs >= PAR_MIN_WORDS * 64 {
            out.par_chunks_mut(n).zip(src.par_chunks(nw)).for_each(f);
        } else {
            out.chunks_mut(n).zip(src.chunks(nw)).for_each(f);
        }
        Ok(out)
    }

    /// Rebuild a ledger from its saved parts by replaying the history (so every derived statistic is
    /// consistent with it). `pred_clean` holds (num, den) per epoch. Validates everything.
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts<F: BitLike>(
        n: usize,
        groups: Option<&[i64]>,
        n_groups: usize,
        flipped: Option<&[F]>,
        hist_correct: &[u64],
        hist_presented: &[u64],
        n_epochs: usize,
        pred_clean: &[i64],
        last_pred: Option<&[i64]>,
        clean_labels: Option<&[i64]>,
    ) -> Result<Self> {
        let mut l = Ledger::new(n, groups, n_groups, flipped)?;
        let nw = l.words();
        let bad = |m: &str| Err(CoreError::value(format!("not a valid ledger state: {m}")));
        if n_epochs > MAX_EPOCHS {
            return bad("too many epochs");
        }
        let size = n_epochs.checked_mul(nw);
        if size != Some(hist_correct.len()) || size != Some(hist_presented.len()) {
            return bad("history size does not match n_samples × n_epochs");
        }
        if pred_clean.len() != 2 * n_epochs {
            return bad("pred_clean size does not match n_epochs");
        }
        for e in 0..n_epochs {
            let (c, p) = (
                &hist_correct[e * nw..(e + 1) * nw],
                &hist_presented[e * nw..(e + 1) * nw],
            );
            if c.iter().zip(p).any(|(c, p)| c & !p != 0) {
                return bad("a correct bit is set for a sample that was not presented");
            }
            if p.iter()
                .enumerate()
                .any(|(w, &x)| x & !valid_mask(n, w) != 0)
            {
                return bad("history bits set beyond n_samples");
            }
            if p.iter().all(|&x| x == 0) {
                return bad("an epoch with no presented sample");
            }
            l.reserve_epoch(false)?;
            let pcn = l.apply(|w| (c[w], p[w]));
            let (num, den) = (pred_clean[2 * e], pred_clean[2 * e + 1]);
            if den < -1 || num < 0 || (den >= 0 && num > den) || (den == -1 && num != 0) {
                return bad("pred_clean counts out of range");
            }
            l.finish_epoch(pcn, num, den);
        }
        if let Some(p) = last_pred {
            if p.len() != n {
                return bad("last_pred length does not match n_samples");
            }
            if p.iter().any(|&x| !(-1..=MAX_LABEL).contains(&x)) {
                return bad("last_pred values out of range");
            }
            l.last_pred = Some(try_collect(
                p.iter().map(|&x| x as i32),
                "the last predictions",
            )?);
        }
        if let Some(y) = clean_labels {
            l.set_clean_labels(y)?;
        }
        Ok(l)
    }
}

#[cfg(test)]
mod tests {
    /// No flip mask (`None` needs an element type).
    const NO_FLIP: Option<&[bool]> = None;

    use super::*;

    /// A tiny deterministic generator for the tests (splitmix64).
    struct Sm(u64);
    impl Sm {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
    }

    /// Plain per-sample reference: (times_correct, presentations, first_learned, forgetting, learned_since).
    fn reference(seq: &[Vec<Option<bool>>], n: usize) -> Vec<(i32, i32, i32, i32, i32)> {
        (0..n)
            .map(|i| {
                let (mut tc, mut np, mut fl, mut fe, mut ls) = (0, 0, -1, 0, -1);
                let mut prev: Option<bool> = None;
                for (e, ep) in seq.iter().enumerate() {
                    if let Some(c) = ep[i] {
                        np += 1;
                        if c {
                            tc += 1;
                            if fl < 0 {
                                fl = e as i32;
                            }
                            if prev != Some(true) {
                                ls = e as i32;
                            }
                        } else {
                            ls = -1;
                            if prev == Some(true) {
                                fe += 1;
                            }
                        }
                        prev = Some(c);
                    }
                }
                (tc, np, fl, fe, ls)
            })
            .collect()
    }

    #[test]
    fn pack64_matches_bitwise_for_all_bytes() {
        for v in 0u32..256 {
            let bytes: Vec<u8> = (0..8).map(|k| ((v >> k) & 1) as u8).collect();
            assert_eq!(pack64(&bytes), v as u64);
        }
        // Any nonzero byte is a set bit (numpy bools), every byte value in every position.
        for pos in 0..9 {
            for v in 0..=255u8 {
                let mut bytes = vec![0u8; 9];
                bytes[pos] = v;
                assert_eq!(
                    pack64(&bytes),
                    ((v != 0) as u64) << pos,
                    "byte {v} at {pos}"
                );
            }
        }
        let mut r = Sm(7);
        for len in [1usize, 7, 8, 9, 63, 64] {
            let b: Vec<u8> = (0..len).map(|_| (r.next() % 4) as u8 * 85).collect();
            let want = b
                .iter()
                .enumerate()
                .fold(0u64, |a, (k, &x)| a | (((x != 0) as u64) << k));
            assert_eq!(pack64(&b), want);
        }
        for len in [1usize, 7, 8, 9, 63, 64] {
            let b: Vec<bool> = (0..len).map(|_| r.next() & 1 == 1).collect();
            let want = b
                .iter()
                .enumerate()
                .fold(0u64, |a, (k, &x)| a | ((x as u64) << k));
            assert_eq!(pack64(BitLike::bytes(&b)), want);
        }
    }

    fn check_against_reference(n: usize, epochs: usize, seed: u64, batch: bool) {
        let mut r = Sm(seed);
        let mut l = Ledger::new(n, None, 0, NO_FLIP).unwrap();
        let mut seq = Vec::new();
        for _ in 0..epochs {
            // Correctness biased by a per-sample drift so runs and flips both occur.
            let c: Vec<bool> = (0..n).map(|_| r.next() % 3 != 0).collect();
            if batch {
                let pres: Vec<bool> = (0..n).map(|_| r.next() % 4 != 0).collect();
                let mut idx: Vec<u32> = (0..n as u32).filter(|&i| pres[i as usize]).collect();
                if idx.is_empty() {
                    idx.push(0);
                }
                // shuffle
                for k in (1..idx.len()).rev() {
                    idx.swap(k, (r.next() % (k as u64 + 1)) as usize);
                }
                for part in idx.chunks(17) {
                    let cc: Vec<bool> = part.iter().map(|&i| c[i as usize]).collect();
                    l.record_batch::<u32, bool, i64>(part, &cc, None).unwrap();
                }
                l.end_epoch().unwrap();
                let mut ep = vec![None; n];
                for &i in &idx {
                    ep[i as usize] = Some(c[i as usize]);
                }
                seq.push(ep);
            } else {
                l.record_epoch::<bool, i64>(&c, None).unwrap();
                seq.push(c.iter().map(|&x| Some(x)).collect());
            }
        }
        let want = reference(&seq, n);
        let (tc, np, fl, fe, ls) = (
            l.times_correct().unwrap(),
            l.presentations().unwrap(),
            l.first_learned().unwrap(),
            l.forgetting_events().unwrap(),
            l.learned_since().unwrap(),
        );
        for i in 0..n {
            assert_eq!(
                (tc[i], np[i], fl[i], fe[i], ls[i]),
                want[i],
                "sample {i} of {n}"
            );
        }
        let hist = l.unpack_history(false).unwrap();
        let pres = l.unpack_history(true).unwrap();
        for (e, ep) in seq.iter().enumerate() {
            for i in 0..n {
                assert_eq!(hist[e * n + i], ep[i] == Some(true));
                assert_eq!(pres[e * n + i], ep[i].is_some());
            }
        }
    }

    #[test]
    fn statistics_match_reference_full_epochs() {
        for (n, s) in [(1, 1), (63, 2), (64, 3), (65, 4), (4097, 5), (70_001, 6)] {
            check_against_reference(n, 9, s, false);
        }
    }

    #[test]
    fn statistics_match_reference_batches() {
        for (n, s) in [(1, 11), (63, 12), (65, 13), (4100, 14), (66_000, 15)] {
            check_against_reference(n, 9, s, true);
        }
    }

    #[test]
    fn group_counts_match_direct() {
        for ng in [3usize, 100] {
            let n = 5000;
            let mut r = Sm(ng as u64);
            let g: Vec<i64> = (0..n).map(|_| (r.next() % ng as u64) as i64).collect();
            let f: Vec<bool> = (0..n).map(|_| r.next() % 5 == 0).collect();
            let mut l = Ledger::new(n, Some(&g), ng, Some(&f)).unwrap();
            let c: Vec<u8> = (0..n).map(|_| (r.next() & 1) as u8).collect();
            l.record_epoch::<u8, i64>(&c, None).unwrap();
            let row = l.epoch_counts();
            assert_eq!(row[0], n as i64);
            assert_eq!(row[1], c.iter().map(|&x| x as i64).sum::<i64>());
            assert_eq!(row[2], f.iter().filter(|&&x| x).count() as i64);
            assert_eq!(row[3], (0..n).filter(|&i| f[i] && c[i] == 1).count() as i64);
            for k in 0..ng {
                let gp = (0..n).filter(|&i| g[i] == k as i64).count() as i64;
                let gc = (0..n).filter(|&i| g[i] == k as i64 && c[i] == 1).count() as i64;
                assert_eq!(row[COUNT_COLS + k], gp);
                assert_eq!(row[COUNT_COLS + ng + k], gc);
            }
            assert_eq!(l.group_ids().unwrap().unwrap(), g);
        }
    }

    #[test]
    fn bad_input_changes_nothing() {
        let mut l = Ledger::new(10, None, 0, NO_FLIP).unwrap();
        l.record_epoch::<bool, i64>(&[true; 10], None).unwrap();
        let before = format!("{l:?}");
        assert!(l.record_epoch::<bool, i64>(&[true; 9], None).is_err());
        assert!(l.record_epoch::<u8, i64>(&[2; 10], None).is_err());
        assert!(l
            .record_epoch::<bool, i64>(&[true; 10], Some(&[-1; 10]))
            .is_err());
        assert!(l
            .record_batch::<i64, bool, i64>(&[1, 10], &[true, true], None)
            .is_err());
        assert!(l
            .record_batch::<i64, bool, i64>(&[1, 3, 1], &[true; 3], None)
            .is_err());
        assert!(l.end_epoch().is_err());
        assert_eq!(before, format!("{l:?}"));
        l.record_batch::<i64, bool, i64>(&[1, 2], &[true; 2], None)
            .unwrap();
        let before = format!("{l:?}");
        assert!(l
            .record_batch::<i64, bool, i64>(&[3, 2], &[true; 2], None)
            .is_err());
        assert!(l
            .record_batch::<i64, bool, i64>(&[3], &[true], Some(&[1]))
            .is_err());
        assert!(l.record_epoch::<bool, i64>(&[true; 10], None).is_err());
        assert_eq!(before, format!("{l:?}"));
        assert!(Ledger::new(0, None, 0, NO_FLIP).is_err());
        assert!(Ledger::new(3, Some(&[0, 1, 2]), 2, NO_FLIP).is_err());
        assert!(Ledger::new(3, Some(&[0, -1, 1]), 2, NO_FLIP).is_err());
    }

    #[test]
    fn from_parts_replays_exactly() {
        let n = 130;
        let mut r = Sm(99);
        let g: Vec<i64> = (0..n).map(|i| (i % 3) as i64).collect();
        let f: Vec<bool> = (0..n).map(|_| r.next() % 4 == 0).collect();
        let mut l = Ledger::new(n, Some(&g), 3, Some(&f)).unwrap();
        let y: Vec<i64> = (0..n).map(|_| (r.next() % 10) as i64).collect();
        l.set_clean_labels(&y).unwrap();
        for _ in 0..5 {
            let c: Vec<bool> = (0..n).map(|_| r.next() & 1 == 1).collect();
            let p: Vec<i64> = (0..n).map(|_| (r.next() % 10) as i64).collect();
            l.record_epoch(&c, Some(&p)).unwrap();
        }
        let (hc, hp) = l.history_words();
        let pc: Vec<i64> = l
            .epoch_counts()
            .chunks(l.count_cols())
            .flat_map(|row| [row[4], row[5]])
            .collect();
        let lp: Vec<i64> = l.last_pred().unwrap().iter().map(|&x| x as i64).collect();
        let l2 = Ledger::from_parts(
            n,
            Some(&g),
            3,
            Some(&f),
            hc,
            hp,
            5,
            &pc,
            Some(&lp),
            Some(&y),
        )
        .unwrap();
        assert_eq!(format!("{l:?}"), format!("{l2:?}"));
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// A development timing aid, not a test of speed (the bench compares against numpy):
    /// `cargo test --release -p lrdecay-core -- --ignored --nocapture ingest_timing`
    #[test]
    #[ignore]
    fn ingest_timing() {
        let n = 1_000_000;
        let mut s = 12345u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut c: Vec<bool> = (0..n).map(|_| next() % 10 < 3).collect();
        let seq: Vec<Vec<bool>> = (0..20)
            .map(|_| {
                for x in c.iter_mut() {
                    if next() % 10 == 0 {
                        *x = !*x;
                    }
                }
                c.clone()
            })
            .collect();
        let g: Vec<i64> = (0..n).map(|i| (i % 2) as i64).collect();
        let f: Vec<bool> = (0..n).map(|i| i % 5 == 0).collect();
        for _ in 0..3 {
            let mut l = Ledger::new(n, Some(&g), 2, Some(&f)).unwrap();
            let t = std::time::Instant::now();
            for c in &seq {
                l.record_epoch::<bool, i64>(c, None).unwrap();
            }
            let dt = t.elapsed().as_secs_f64();
            let t = std::time::Instant::now();
            let a = (
                l.times_correct().unwrap(),
                l.learned_since().unwrap(),
                l.first_learned().unwrap(),
                l.forgetting_events().unwrap(),
            );
            eprintln!(
                "ingest {:.2} ms/epoch, read {:.1} ms ({})",
                dt * 1e3 / 20.0,
                t.elapsed().as_secs_f64() * 1e3,
                a.0.len()
            );
        }
    }
}
