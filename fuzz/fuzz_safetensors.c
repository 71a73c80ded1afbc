/* libFuzzer target: the safetensors header parser (length prefix, JSON, dtypes, shapes, offsets). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Copy into a fresh allocation so alignment checks and bounds match a real mapping. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    char err[256];
    struct st_file f;
    if (st_parse(buf, size, &f, err, sizeof err) == 0) {
        for (size_t i = 0; i < f.count; i++) /* every tensor must lie inside the buffer */
            if ((const uint8_t *)f.tensors[i].data < buf ||
                (const uint8_t *)f.tensors[i].data + f.tensors[i].nbytes > buf + size)
                abort();
        st_find(&f, "model.norm.weight");
        st_metadata(&f, "format");
        st_close(&f);
    }
    free(buf);
    return 0;
}
