/* Instantiates scan_template.h for both scan metrics (direct squared L2, and the dot product of
 * the norm trick) and the sketch pass (sketch_template.h) of the ISA the includer names with SCAN_ISA and SCAN_ATTR, then clears them.
 * dispatch.c includes this once per ISA; there is deliberately no include guard. */

#define SCAN_METRIC l2
#define SOSIE_METRIC_IS_DOT 0
#include "scan_template.h"
#undef SCAN_METRIC
#undef SOSIE_METRIC_IS_DOT

#define SCAN_METRIC dot
#define SOSIE_METRIC_IS_DOT 1
#include "scan_template.h"
#undef SCAN_METRIC
#undef SOSIE_METRIC_IS_DOT

#include "sketch_template.h"

#undef SCAN_ISA
#undef SCAN_ATTR
