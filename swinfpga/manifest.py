"""``manifest.json`` of a converted project: what the back ends and testbenches read instead of
retyping parameters.

Project layout written by ``swinfpga convert``::

    DIR/manifest.json   this file
    DIR/model.json      the IR (swinfpga.ir.Model JSON)
    DIR/vectors.npz     x: input codes (B, *input_shape) int64; y: golden output codes
    DIR/hls/            hls4ml project (build_prj.tcl, firmware/, ...)
    DIR/rtl/            Verilog, ROM files, rtl.json
"""

from __future__ import annotations

import math
import typing
import zipfile
import zlib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SwinfpgaError
from .fixed import Fmt

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class TableInfo:
    name: str
    kind: str
    size: int
    in_type: str
    out_type: str
    sha256: str


@dataclass(frozen=True)
class Manifest:
    model: str
    board: str
    part: str
    clock_mhz: float
    input_shape: tuple[int, ...]
    input_fmt: Fmt
    output_shape: tuple[int, ...]
    output_fmt: Fmt
    n_vectors: int
    vector_source: str
    tables: tuple[TableInfo, ...] = ()
    ir: str = "model.json"
    vectors: str = "vectors.npz"
    hls_dir: str | None = "hls"
    rtl_dir: str | None = "rtl"
    swinfpga_version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_fmt"] = self.input_fmt.to_json()
        d["output_fmt"] = self.output_fmt.to_json()
        d["input_type"] = self.input_fmt.ap_type
        d["output_type"] = self.output_fmt.ap_type
        return d

    @classmethod
    def from_json(cls, d: Any, source: str = MANIFEST) -> Manifest:
        """Build from the JSON form; anything malformed raises :class:`ManifestError` naming
        ``source`` and the key."""
        if not isinstance(d, dict):
            raise ManifestError(f"{source}: expected a JSON object, got {type(d).__name__}; {_REGEN}")
        try:
            m = cls(
                model=d["model"], board=d["board"], part=d["part"], clock_mhz=float(d["clock_mhz"]),
                input_shape=tuple(d["input_shape"]), input_fmt=Fmt.from_json(d["input_fmt"]),
                output_shape=tuple(d["output_shape"]), output_fmt=Fmt.from_json(d["output_fmt"]),
                n_vectors=int(d["n_vectors"]), vector_source=d["vector_source"],
                tables=tuple(TableInfo(**t) for t in d.get("tables", [])), ir=d.get("ir", "model.json"),
                vectors=d.get("vectors", "vectors.npz"), hls_dir=d.get("hls_dir"), rtl_dir=d.get("rtl_dir"),
                swinfpga_version=d.get("swinfpga_version", ""), extra=dict(d.get("extra", {})),
            )
        except KeyError as e:
            raise ManifestError(f"{source}: missing key {e.args[0]!r}; {_REGEN}") from None
        except SwinfpgaError as e:
            raise ManifestError(f"{source}: {e}; {_REGEN}") from None
        except (TypeError, ValueError, AttributeError, OverflowError, RecursionError) as e:
            raise ManifestError(f"{source}: invalid value ({type(e).__name__}: {_short(e)}); {_REGEN}") from None
        m._check(source)
        return m

    def _check(self, source: str) -> None:
        from .ir.graph import _type_ok

        hints = typing.get_type_hints(Manifest)
        for f in fields(self):
            v = getattr(self, f.name)
            if not _type_ok(v, hints[f.name]):
                raise ManifestError(f"{source}: key {f.name!r} has the wrong type ({_short(repr(v), 60)}); {_REGEN}")
        for t in self.tables:
            for tf in fields(t):
                if not _type_ok(getattr(t, tf.name), typing.get_type_hints(TableInfo)[tf.name]):
                    raise ManifestError(f"{source}: tables[{t.name!r}].{tf.name} has the wrong type; {_REGEN}")
        if not (math.isfinite(self.clock_mhz) and self.clock_mhz > 0):
            raise ManifestError(f"{source}: clock_mhz must be a positive number of MHz, got {self.clock_mhz}")
        for key in ("input_shape", "output_shape"):
            if not all(int(x) >= 1 for x in getattr(self, key)):
                raise ManifestError(f"{source}: {key} must hold positive sizes, got {list(getattr(self, key))}")
        if self.n_vectors < 0:
            raise ManifestError(f"{source}: n_vectors must be >= 0, got {self.n_vectors}")
        for key in ("ir", "vectors", "hls_dir", "rtl_dir"):
            v = getattr(self, key)
            if v is not None and (not v or Path(v).is_absolute() or ".." in Path(v).parts):
                raise ManifestError(f"{source}: {key} must be a relative path inside the project, got {v!r}")


_REGEN = "regenerate the project with `swinfpga convert MODEL -o DIR --force`"


class ManifestError(SwinfpgaError, ValueError):
    """A project directory, its manifest or its vectors file is missing or malformed."""


def _short(e: object, limit: int = 200) -> str:
    s = " ".join(str(e).split())
    return s if len(s) <= limit else s[:limit] + " ..."


@dataclass(frozen=True)
class Project:
    """A converted project directory."""

    root: Path
    manifest: Manifest

    @classmethod
    def open(cls, root: str | Path) -> Project:
        """Open a converted project; a missing or malformed manifest raises :class:`ManifestError`."""
        from .ir.graph import read_json

        root = Path(root)
        p = root / MANIFEST
        if not p.is_file():
            raise ManifestError(f"{root} is not a swinfpga project (no {MANIFEST}); run `swinfpga convert` first")
        return cls(root, Manifest.from_json(read_json(p, "manifest", ManifestError), source=str(p)))

    def model(self):
        from .ir import Model

        return Model.load(self.root / self.manifest.ir)

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, y): input codes and golden output codes, int64.  A missing, corrupt or inconsistent
        file raises :class:`ManifestError` (pickled objects are never loaded)."""
        return load_vectors(self.root / self.manifest.vectors, self.manifest)

    @property
    def hls_dir(self) -> Path | None:
        return self.root / self.manifest.hls_dir if self.manifest.hls_dir else None

    @property
    def rtl_dir(self) -> Path | None:
        return self.root / self.manifest.rtl_dir if self.manifest.rtl_dir else None


def load_vectors(path: Path, man: Manifest) -> tuple[np.ndarray, np.ndarray]:
    """Read ``vectors.npz`` (``x``, ``y`` integer codes) and check it against the manifest."""
    fix = "regenerate it with `swinfpga convert MODEL -o DIR --force`"
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic != b"PK\x03\x04":
            what = "empty" if not magic else "a single .npy array" if magic == b"\x93NUM" else "not an .npz archive"
            raise ManifestError(f"{path}: {what} (expected the .npz zip archive of arrays x and y); {fix}")
        with np.load(path, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):  # pragma: no cover (the magic check comes first)
                raise ManifestError(f"{path}: not an .npz archive; {fix}")
            missing = [k for k in ("x", "y") if k not in z.files]
            if missing:
                raise ManifestError(f"{path}: missing array {missing[0]!r} (has {', '.join(z.files) or 'none'}); {fix}")
            x, y = z["x"], z["y"]
    except ManifestError:
        raise
    except FileNotFoundError:
        raise ManifestError(f"{path}: test vectors file not found; {fix}") from None
    except IsADirectoryError:
        raise ManifestError(f"{path}: is a directory, expected the test vectors .npz; {fix}") from None
    except ValueError as e:
        if "pickle" in str(e):
            raise ManifestError(f"{path}: holds Python object arrays (pickled data), which swinfpga never loads "
                                f"(unsafe); {fix}") from None
        raise ManifestError(f"{path}: corrupt or truncated vectors file ({_short(e)}); {fix}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError, TypeError, OverflowError,
            NotImplementedError, RuntimeError, MemoryError) as e:
        raise ManifestError(f"{path}: corrupt or truncated vectors file ({type(e).__name__}: {_short(e)}); "
                            f"{fix}") from None
    for k, a, shape, fmt in (("x", x, man.input_shape, man.input_fmt), ("y", y, man.output_shape, man.output_fmt)):
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "iu":
            kind = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
            raise ManifestError(f"{path}: array {k!r} must hold integer codes, got {kind}; {fix}")
        if a.shape[1:] != tuple(shape):
            raise ManifestError(f"{path}: array {k!r} has shape {a.shape}, the manifest says (N, "
                                f"{', '.join(map(str, shape))}); {fix}")
        if a.size and not fmt.contains(a.astype(np.int64)):
            raise ManifestError(f"{path}: array {k!r} holds codes outside {fmt}; {fix}")
    if x.shape[0] != y.shape[0]:
        raise ManifestError(f"{path}: {x.shape[0]} inputs but {y.shape[0]} outputs; {fix}")
    return x.astype(np.int64), y.astype(np.int64)
