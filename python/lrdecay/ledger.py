"""The per-sample ledger: what a network learns, forgets and memorizes, epoch by epoch.

:class:`Ledger` records, for every training sample and every epoch, whether the sample was presented and
whether the network got it right (against its *observed*, possibly noisy label). The bookkeeping runs in
Rust (``lrdecay._native.LedgerCore``): one pass per epoch with the GIL released, the history bit-packed
(2 bits per sample-epoch), input arrays read in place without a copy.

Definitions (epochs are the 0-based indices of recorded epochs):

* a sample is **presented** in an epoch if it was part of that epoch's record: always for
  :meth:`Ledger.record_epoch`; only the given ``indices`` for :meth:`Ledger.record_batch`. An epoch in
  which a sample was not presented counts neither as right nor as wrong for it and does not break its
  forgetting sequence;
* ``times_correct`` / ``presentations``: epochs it was presented and correct / presented;
* ``first_learned``: the first epoch it was presented and correct, ``-1`` if never;
* ``forgetting_events``: correct → incorrect transitions between consecutive presentations (Toneva et
  al., "An Empirical Study of Example Forgetting");
* ``never_learned``: never correct at any presentation;
* ``learned_since``: if the sample was correct at its latest presentation, the epoch of the first
  presentation of its final unbroken run of correct presentations (it has been right at every presentation
  from then through its latest one); ``-1`` if it was wrong at its latest presentation or never presented.
  For a label-flipped sample this is when the network memorized it.
"""

from __future__ import annotations

import hashlib
import os
from typing import IO, Any, Mapping, Sequence

import numpy as np

from lrdecay._atomic import atomic_write
from lrdecay._native import LEDGER_COUNT_COLUMNS, LEDGER_LIMITS, LedgerCore
from lrdecay._validate import check_int

__all__ = ["Ledger", "LIMITS"]

#: The limits of the Rust ledger (``lrdecay._native.LEDGER_LIMITS``): ``max_samples``, ``max_groups``,
#: ``max_epochs``, ``max_label`` (largest prediction or clean label).
LIMITS: dict[str, int] = dict(LEDGER_LIMITS)
# Column index of each named per-epoch count in LedgerCore.epoch_counts(); per-group columns follow.
_COL = {name: i for i, name in enumerate(LEDGER_COUNT_COLUMNS)}

_FORMAT = "lrdecay.Ledger"
_VERSION = 1
_REQUIRED = (
    "format",
    "version",
    "n_samples",
    "n_epochs",
    "n_groups",
    "group_names",
    "hist_correct",
    "hist_presented",
    "pred_clean",
)
_OPTIONAL = ("groups", "flipped", "last_pred", "clean_labels")
# The .npz member holding the SHA-256 of every other member (names, dtypes, shapes and bytes).
_CHECKSUM = "sha256"


def _checksum(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """SHA-256 over every member but the checksum, in name order: name, dtype, shape, then the bytes.
    A file that lost a member, or whose header or data changed, no longer matches."""
    h = hashlib.sha256()
    for name in sorted(k for k in arrays if k != _CHECKSUM):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return np.frombuffer(h.digest(), dtype=np.uint8).copy()


def _as_1d(x: Any, name: str) -> np.ndarray:
    """``x`` as a contiguous 1-D array (no copy when it already is one)."""
    a = x if isinstance(x, np.ndarray) else np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {a.shape}")
    return np.ascontiguousarray(a)


def _as_bits(x: Any, name: str) -> np.ndarray:
    a = _as_1d(x, name)
    if a.dtype != np.bool_ and a.dtype != np.uint8:
        raise TypeError(f"{name} must have dtype bool or uint8 (0/1), got {a.dtype}")
    return a


def _as_ints(x: Any, name: str) -> np.ndarray:
    a = _as_1d(x, name)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must have an integer dtype, got {a.dtype}")
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    return a


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den as float64, NaN where den <= 0."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


class Ledger:
    """Per-sample record of correctness over training epochs (see the module docstring for definitions).

    Args:
        n_samples: number of training samples, in [1, 2**31 - 1] (``LIMITS["max_samples"]``).
        groups: optional integer group id per sample (e.g. a pattern dataset's ``group``), in
            ``[0, n_groups)``; ``n_groups`` is ``len(group_names)`` when names are given, else
            ``max(groups) + 1``; at most 65536 groups.
        group_names: optional names of the groups (default ``"0"``, ``"1"``, ...).
        flipped: optional bool mask of label-flipped samples.

    Feed it either :meth:`record_epoch` once per epoch, or :meth:`record_batch` any number of times
    followed by :meth:`end_epoch`. Every call validates all of its input before changing anything: on a
    ``ValueError``/``TypeError`` the ledger is unchanged.
    """

    def __init__(
        self,
        n_samples: int,
        *,
        groups: Any = None,
        group_names: Sequence[str] | None = None,
        flipped: Any = None,
    ) -> None:
        n = check_int("n_samples", n_samples, 1, LIMITS["max_samples"])
        n_groups = 0
        g = None
        if groups is not None:
            g = _as_ints(groups, "groups")
            if g.shape[0] != n:
                raise ValueError(f"groups has length {g.shape[0]}, expected n_samples = {n}")
            if group_names is not None:
                n_groups = len(group_names)
            else:
                n_groups = int(g.max()) + 1 if g.size else 1
                n_groups = max(n_groups, 1)
            if n_groups > LIMITS["max_groups"]:
                raise ValueError(f"groups: at most {LIMITS['max_groups']} groups are supported, got {n_groups}")
        elif group_names is not None:
            raise ValueError("group_names given without groups")
        names = self._check_names(group_names, n_groups)
        f = None
        if flipped is not None:
            f = _as_1d(flipped, "flipped")
            if f.dtype != np.bool_:
                raise TypeError(f"flipped must be a bool mask, got dtype {f.dtype}")
        self._core = LedgerCore(n, g, n_groups, f)
        self._group_names = names

    @staticmethod
    def _check_names(group_names: Sequence[str] | None, n_groups: int) -> tuple[str, ...]:
        if group_names is None:
            return tuple(str(k) for k in range(n_groups))
        if isinstance(group_names, str):
            raise TypeError("group_names must be a sequence of str, not a single str")
        names = tuple(group_names)
        if not all(isinstance(s, str) for s in names):
            raise TypeError("group_names must be a sequence of str")
        if len(names) != n_groups:
            raise ValueError(f"group_names has {len(names)} names, expected n_groups = {n_groups}")
        if n_groups == 0:
            raise ValueError("group_names must not be empty")
        if len(set(names)) != len(names):
            raise ValueError(f"group_names must be unique, got {list(names)}")
        return names

    # ----------------------------------------------------------------------------------------- feeding

    def record_epoch(self, correct: Any, *, pred: Any = None) -> None:
        """Record one whole epoch: every sample is presented.

        Args:
            correct: bool (or uint8 0/1) array of length ``n_samples``: sample i was classified as its
                observed (possibly noisy) label. A bool array is read as numpy reads it (any nonzero
                byte is True, e.g. a uint8 buffer viewed as bool); a uint8 array must hold only 0 and 1.
            pred: optional predicted labels, any integer dtype, values in ``[0, 2**31 - 1]``; kept as
                :attr:`last_pred` and used for the ``predicted_clean`` summary.
        """
        c = _as_bits(correct, "correct")
        p = None if pred is None else _as_ints(pred, "pred")
        self._core.record_epoch(c, p)

    def record_batch(self, indices: Any, correct: Any, *, pred: Any = None) -> None:
        """Record one batch of the current epoch; close the epoch with :meth:`end_epoch`.

        Args:
            indices: integer sample ids in ``[0, n_samples)``; a sample may appear at most once per epoch
                (within a batch or across the batches of one epoch).
            correct: bool/uint8 array aligned with ``indices``.
            pred: optional predicted labels aligned with ``indices``; either every batch of an epoch
                carries ``pred`` or none does.
        """
        i = _as_ints(indices, "indices")
        c = _as_bits(correct, "correct")
        p = None if pred is None else _as_ints(pred, "pred")
        self._core.record_batch(i, c, p)

    def end_epoch(self) -> None:
        """Close the epoch assembled by :meth:`record_batch`; samples in no batch were not presented.

        Raises ``ValueError`` when no sample was recorded since the last epoch.
        """
        self._core.end_epoch()

    def set_clean_labels(self, y_clean: Any) -> None:
        """Give the clean (pre-noise) labels, integers in ``[0, 2**31 - 1]``.

        From the next recorded epoch that carries ``pred`` on, the summary's ``predicted_clean`` is the
        fraction of presented flipped samples predicted as their clean label.
        """
        self._core.set_clean_labels(_as_ints(y_clean, "y_clean"))

    # ----------------------------------------------------------------------------------------- reading

    @property
    def n_samples(self) -> int:
        """Number of samples."""
        return self._core.n_samples

    @property
    def n_epochs(self) -> int:
        """Number of recorded (closed) epochs."""
        return self._core.n_epochs

    @property
    def n_groups(self) -> int:
        """Number of groups (0 without ``groups``)."""
        return self._core.n_groups

    @property
    def group_names(self) -> tuple[str, ...]:
        """Names of the groups."""
        return self._group_names

    @property
    def epoch_open(self) -> bool:
        """True while :meth:`record_batch` has started an epoch that :meth:`end_epoch` has not closed."""
        return self._core.epoch_open

    @property
    def times_correct(self) -> np.ndarray:
        """int32 per sample: epochs in which it was presented and correct."""
        return self._core.times_correct()

    @property
    def presentations(self) -> np.ndarray:
        """int32 per sample: epochs in which it was presented."""
        return self._core.presentations()

    @property
    def first_learned(self) -> np.ndarray:
        """int32 per sample: first epoch it was presented and correct; -1 if never."""
        return self._core.first_learned()

    @property
    def forgetting_events(self) -> np.ndarray:
        """int32 per sample: correct → incorrect transitions between consecutive presentations."""
        return self._core.forgetting_events()

    @property
    def never_learned(self) -> np.ndarray:
        """bool per sample: never correct at any presentation (including never presented)."""
        return self._core.never_learned()

    @property
    def learned_since(self) -> np.ndarray:
        """int32 per sample: start epoch of the final unbroken run of correct presentations, -1 if wrong
        at its latest presentation or never presented."""
        return self._core.learned_since()

    @property
    def last_pred(self) -> np.ndarray | None:
        """int32 per sample: prediction at its latest presentation that carried ``pred`` (-1 for samples
        never predicted); ``None`` if no epoch carried ``pred``."""
        return self._core.last_pred()

    @property
    def history_nbytes(self) -> int:
        """Bytes of the bit-packed history (correct + presented planes): 2 bits per sample-epoch,
        rounded up to whole 64-sample words per epoch."""
        return self._core.history_nbytes

    def history(self) -> np.ndarray:
        """bool array (n_epochs × n_samples): presented and correct in that epoch."""
        return self._core.history(False)

    def presented_history(self) -> np.ndarray:
        """bool array (n_epochs × n_samples): presented in that epoch."""
        return self._core.history(True)

    def summary(self, as_frame: bool = False) -> Any:
        """Per-epoch accuracies, one row per recorded epoch, computed over the samples presented that epoch.

        Returns a dict of numpy arrays: ``epoch``, ``presented``, ``correct``, ``accuracy``,
        ``presented_flipped``, ``accuracy_clean``, ``accuracy_flipped``, ``memorized`` (= accuracy on
        flipped samples, i.e. the fraction predicted as their noisy label), ``predicted_clean``
        (fraction of flipped samples predicted as their clean label; needs ``pred`` and
        :meth:`set_clean_labels`), ``presented_group`` and ``accuracy_group`` (epochs × n_groups), and
        ``group_names``. A ratio whose denominator is 0 (or that cannot be computed) is NaN.

        With ``as_frame=True`` returns a pandas DataFrame instead, one column ``accuracy[<name>]`` per
        group (needs pandas, which is not a dependency of lrdecay).
        """
        counts = self._core.epoch_counts()
        e, g, k0 = counts.shape[0], self.n_groups, len(LEDGER_COUNT_COLUMNS)
        p, c, pf, cf, pcn, pcd = (
            counts[:, _COL[name]]
            for name in ("presented", "correct", "presented_flipped", "correct_flipped",
                         "flipped_pred_clean", "flipped_with_pred")
        )
        gp, gc = counts[:, k0 : k0 + g], counts[:, k0 + g : k0 + 2 * g]
        acc_f = _ratio(cf, pf)
        out = {
            "epoch": np.arange(e, dtype=np.int64),
            "presented": p.copy(),
            "correct": c.copy(),
            "accuracy": _ratio(c, p),
            "presented_flipped": pf.copy(),
            "accuracy_clean": _ratio(c - cf, p - pf),
            "accuracy_flipped": acc_f,
            "memorized": acc_f.copy(),
            "predicted_clean": _ratio(pcn, pcd),
            "presented_group": gp.copy(),
            "accuracy_group": _ratio(gc, gp).reshape(e, g),
            "group_names": list(self._group_names),
        }
        if not as_frame:
            return out
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "Ledger.summary(as_frame=True) needs pandas, which lrdecay does not install: "
                "`pip install pandas`, or use summary() (a dict of numpy arrays)"
            ) from None
        cols = {k: v for k, v in out.items() if k not in ("accuracy_group", "presented_group", "group_names")}
        for k, name in enumerate(self._group_names):
            cols[f"accuracy[{name}]"] = out["accuracy_group"][:, k]
        return pd.DataFrame(cols)

    # ------------------------------------------------------------------------------------ persistence

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to restore this ledger exactly (numpy arrays and plain values).

        Raises ``ValueError`` while an epoch is open (call :meth:`end_epoch` first).
        """
        if self._core.epoch_open:
            raise ValueError("state_dict() while an epoch is open: call end_epoch() first")
        core = self._core
        hc, hp = core.history_words()
        counts = core.epoch_counts()
        sd: dict[str, Any] = {
            "format": _FORMAT,
            "version": _VERSION,
            "n_samples": core.n_samples,
            "n_epochs": core.n_epochs,
            "n_groups": core.n_groups,
            "group_names": list(self._group_names),
            "hist_correct": hc,
            "hist_presented": hp,
            "pred_clean": np.ascontiguousarray(
                counts[:, [_COL["flipped_pred_clean"], _COL["flipped_with_pred"]]]
            ),
        }
        optional = {
            "groups": core.group_ids(),
            "flipped": core.flipped(),
            "last_pred": core.last_pred(),
            "clean_labels": core.clean_labels(),
        }
        sd.update({k: v for k, v in optional.items() if v is not None})
        return sd

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Replace this ledger's content by ``state_dict`` (from :meth:`state_dict`).

        The history is replayed, so every statistic is consistent with it. Raises ``ValueError`` for a
        state that is not a valid ledger; the ledger is then unchanged.
        """
        core, names = self._core_from_state(state_dict)
        self._core, self._group_names = core, names

    @staticmethod
    def _core_from_state(sd: Mapping[str, Any]) -> tuple[LedgerCore, tuple[str, ...]]:
        def bad(msg: str) -> ValueError:
            return ValueError(f"not a valid ledger state: {msg}")

        if not isinstance(sd, Mapping):
            raise bad(f"expected a mapping, got {type(sd).__name__}")
        missing = [k for k in _REQUIRED if k not in sd]
        if missing:
            raise bad(f"missing keys {missing}")
        try:
            fmt = str(np.asarray(sd["format"]).item())
            version = int(np.asarray(sd["version"]).item())
            n = int(np.asarray(sd["n_samples"]).item())
            n_epochs = int(np.asarray(sd["n_epochs"]).item())
            n_groups = int(np.asarray(sd["n_groups"]).item())
        except (TypeError, ValueError) as e:
            raise bad(f"malformed header ({e})") from None
        if fmt != _FORMAT:
            raise bad(f"format is {fmt!r}, expected {_FORMAT!r}")
        if version != _VERSION:
            raise bad(f"version {version} is not supported (expected {_VERSION})")
        if n < 1 or n_epochs < 0 or n_groups < 0:
            raise bad("n_samples, n_epochs or n_groups out of range")
        names = [str(s) for s in np.asarray(sd["group_names"]).reshape(-1).tolist()]
        if len(names) != n_groups:
            raise bad(f"{len(names)} group names for {n_groups} groups")

        def arr(key: str, kind: str, dtype: Any) -> np.ndarray | None:
            if key not in sd or sd[key] is None:
                return None
            a = np.asarray(sd[key])
            if a.dtype.kind not in kind:
                raise bad(f"{key} has dtype {a.dtype}")
            return np.ascontiguousarray(a.reshape(-1)).astype(dtype, copy=False)

        hc = arr("hist_correct", "u", np.uint64)
        hp = arr("hist_presented", "u", np.uint64)
        pc = arr("pred_clean", "i", np.int64)
        groups = arr("groups", "iu", np.int64)
        flipped = arr("flipped", "b", np.bool_)
        last_pred = arr("last_pred", "i", np.int64)
        clean = arr("clean_labels", "iu", np.int64)
        if (groups is None) != (n_groups == 0):
            raise bad("groups and n_groups disagree")
        core = LedgerCore.from_parts(
            n, groups, n_groups, flipped, hc, hp, n_epochs, pc, last_pred, clean
        )
        return core, tuple(names)

    def save(self, path: str | os.PathLike) -> None:
        """Write the ledger to ``path`` as an ``.npz`` file, atomically (temp file, then rename), with a
        SHA-256 of its content that :meth:`load` checks."""
        sd = self.state_dict()
        arrays = {k: np.asarray(v) for k, v in sd.items()}
        arrays["group_names"] = np.asarray(sd["group_names"], dtype=np.str_).reshape(-1)
        arrays[_CHECKSUM] = _checksum(arrays)
        with atomic_write(path) as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike | IO[bytes]) -> "Ledger":
        """Read a ledger written by :meth:`save` (a path, or a binary file object): whole, or refused.
        ``ValueError`` if the file is not a ledger, is damaged (its checksum does not match its content),
        or lacks a checksum; ``FileNotFoundError`` if it does not exist."""
        if hasattr(path, "read"):
            source: Any = path
            path = str(getattr(path, "name", "<file object>"))
        else:
            source = path = os.fspath(path)
        try:
            z = np.load(source, allow_pickle=False)
        except (FileNotFoundError, IsADirectoryError, PermissionError, MemoryError):
            raise
        except Exception as e:  # a damaged archive raises anything zipfile or numpy happen to raise
            raise ValueError(f"{path} is not a readable ledger file: {type(e).__name__}: {e}") from None
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError(f"{path} is not a ledger file (not an .npz archive)")
        try:
            with z:
                # Reading every member now surfaces truncation and CRC errors here.
                arrays = {k: z[k] for k in z.files}
        except MemoryError:
            raise
        except Exception as e:
            raise ValueError(f"{path} is not a readable ledger file: {type(e).__name__}: {e}") from None
        stored = arrays.pop(_CHECKSUM, None)
        if stored is None:
            raise ValueError(
                f"{path} has no checksum: it is damaged, not a ledger, or was written by an lrdecay "
                f"version without one; a ledger file is loaded whole or not at all"
            )
        if not (stored.dtype == np.uint8 and stored.shape == (32,)) or not np.array_equal(stored, _checksum(arrays)):
            raise ValueError(f"{path} is damaged: its checksum does not match its content")
        self = cls.__new__(cls)
        self._core, self._group_names = cls._core_from_state(arrays)
        return self

    def __repr__(self) -> str:
        return (
            f"Ledger(n_samples={self.n_samples}, n_epochs={self.n_epochs}, "
            f"n_groups={self.n_groups}, history_nbytes={self.history_nbytes})"
        )
