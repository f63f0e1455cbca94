/* libFuzzer target: the governance state-machine driver
 * (tests/unit/governance_driver.h) with the input bytes as its random
 * source, one byte per choice. A broken invariant aborts. The configs and
 * the zone are loaded once; each input starts a fresh walk. Needs tzdata. */
#include <stddef.h>
#include <stdint.h>

#include "../unit/governance_driver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static gd_world w;
    static int ready;
    if (!ready) {
        if (gd_init(&w, NULL, 0, 1) != 0) abort();
        ready = 1;
    }
    if (size > 64 * 1024) return 0;   /* keeps one run short; longer walks add nothing new */
    gd_reset(&w, data, size, 0);
    while (gd_step(&w)) {
    }
    return 0;
}
