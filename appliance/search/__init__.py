"""Exact k-nearest-neighbour search over a (memory-mapped) float16 matrix of descriptors.

One module per concern: `settings` (the config section, the limits), `kernels` (which SIMD
kernel), `checks` (what a scanner is handed), `layout` (the sketch laid out for the scan),
`bounds` (the certificate's arithmetic), `scanner` (`Scanner`).

`Scanner(vectors, norms=None, *, threads=1)` wraps the SIMD kernels of `ext/` (serial, AVX2,
NEON; the best one this CPU runs, or the one forced by ``SOSIE_KERNEL``)::

    scanner = Scanner(corpus.vectors, corpus.norms)
    rows, distances = scanner.topk(descriptor, k=10)

How the answer stays exact although the kernels add in float32: one fused pass keeps, per
thread, the best ``2k + 8`` rows by their float32 value. Those candidates are rescored in
float64 (numpy's formula and summation order, `_scan.nearest`) and sorted by (distance, row). A
rounding-error bound for the kernel then certifies that no row left out can beat or tie the
k-th: every row left out has a float32 value at or above the heap's worst, hence a true distance
above a known lower bound. When the certificate fails (near-ties, many duplicated rows), a
second pass collects every row whose float32 value could still qualify and rescores those.

With a sketch (`appliance.corpus.sketch`, ``Scanner(..., sketch=corpus_sketch)``) the scan
reads the int8 sketch instead, in two stages (ext/kernels/dispatch.h): the first 40 axes of
every row streamed in 16-row blocks, then one record (the other codes, the norms) for each row
that passes them. Each row gets a certified lower bound of its distance, and only rows whose
bound does not exceed tau (a certified upper bound of the k-th best distance among the rows read
so far) are read in float16, into the same heap and the same certificate. A row never read is
farther than k rows already read, so it cannot rank or tie. The kept rows are rescored in
Cython with numpy's float64 arithmetic (pairwise sums), bit for bit a float64 reference's.
"""

from appliance.search.kernels import ENV_KERNEL, kernels
from appliance.search.layout import LAYOUT_VERSION, ScanLayout, first_stage_blocks, scan_layout
from appliance.search.scanner import Scanner
from appliance.search.settings import MAX_SKETCH_AXES, SearchSettings

__all__ = ["ENV_KERNEL", "LAYOUT_VERSION", "MAX_SKETCH_AXES", "ScanLayout", "Scanner",
           "SearchSettings", "first_stage_blocks", "kernels", "scan_layout"]
