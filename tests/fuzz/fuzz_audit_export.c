/* The JSONL export reader (`nomatron audit verify --file`): any bytes, split
 * into lines as audit_verify_file() would, must give a verdict without a
 * crash, a leak or undefined behaviour. The CSV cell writer gets each line too. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "export.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    audit_fverify v;
    audit_fverify_init(&v);
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        audit_fverify_line(&v, p, len);
        /* CSV cells are C strings: a bounded copy of the line */
        char cell[256];
        size_t n = len < sizeof(cell) - 1 ? len : sizeof(cell) - 1;
        memcpy(cell, p, n);
        cell[n] = '\0';
        nm_buf b;
        nm_buf_init(&b, 1024);
        audit_csv_cell(&b, cell);
        nm_buf_free(&b);
        p += len + (nl ? 1 : 0);
    }
    audit_fverify_finish(&v);
    audit_fverify_free(&v);
    return 0;
}
