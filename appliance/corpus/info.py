"""`sosie corpus info`: a human summary of a corpus."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from appliance.corpus import format as fmt
from appliance.corpus.format import CorpusError
from appliance.corpus.store import Corpus, check_models
from appliance.errors import one_line


def summary(corpus: Corpus, weights: Iterable[Path | None] = ()) -> dict[str, Any]:
    """Ordered facts about an opened corpus (for printing or JSON); `weights`: the weights
    files this machine knows (to name the generator of a drawn corpus)."""
    m = corpus.manifest
    source = m.get("source") or {}
    thumbs = m.get("thumbnails") or {}
    files = m.get("files") or {}
    out: dict[str, Any] = {
        "path": str(corpus.path),
        "format": f"{m['format']} v{m['format_version']}",
        "kind": _kind(corpus.synthetic, source),
        "faces": corpus.count,
        "dimension": corpus.dim,
        "built": m.get("built"),
        "build time": f"{m.get('build_seconds', 0):.1f} s",
    }
    if corpus.synthetic:
        out["seed"] = source.get("seed")
    else:
        if source.get("generator"):  # sosie build dcgan:COUNT:SEED
            from appliance.generator.provenance import describe_weights

            out["source generator"] = (f"{source['generator']}:{source.get('files')}:"
                                       f"{source.get('seed')} (weights "
                                       f"{str(source.get('weights'))[:12]})")
            out["generator weights"] = describe_weights(str(source.get("weights")), weights,
                                                        source.get("trained"))
        else:
            out["source folder"] = source.get("folder")
        out["source draws" if source.get("generator") else "source files"] = source.get("files")
        out["rejected"] = source.get("rejected")
        model = (m.get("model") or {}).get("files") or {}
        out["models"] = ", ".join(f"{k} {str(v)[:12]}" for k, v in model.items())
        try:
            check_models(corpus.path, m)
            out["models match"] = "yes (this appliance can search it)"
        except CorpusError as exc:
            out["models match"] = f"NO: {exc}"
        except Exception as exc:  # models not installed here
            out["models match"] = f"unknown ({one_line(exc)})"
    if corpus.count:
        out["norms"] = (f"mean {float(corpus.norms.mean()):.3f}, "
                        f"min {float(corpus.norms.min()):.3f}, max {float(corpus.norms.max()):.3f}")
    ratio = ", ".join(f"{v:.1%}" for v in corpus.pca.explained_variance_ratio)
    out["PCA variance (3 axes)"] = ratio
    out["thumbnails"] = f"{thumbs.get('size')} px {thumbs.get('encoding')}, " \
        f"{'grayscale' if thumbs.get('gray', True) else 'colour'}"
    total = sum(int(e.get("bytes", 0)) for e in files.values())
    out["size on disk"] = f"{total / 1e6:.1f} MB ({files[fmt.THUMBS_PACK]['bytes'] / 1e6:.1f} MB " \
        "thumbnails)"
    return out


def _kind(synthetic: bool, source: dict[str, Any]) -> str:
    if source.get("imported"):
        return "imported descriptors (placeholder thumbnails)"
    if synthetic:
        return "synthetic"
    return "drawn by a generator" if source.get("generator") else "built from images"
