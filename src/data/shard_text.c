/* pretrain.txt -> token shard: documents split at DATA_DOC_SEPARATOR lines, each encoded as <s> text </s>. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/data.h"
#include "melodist/data_json.h"
#include "melodist/shard.h"
#include "melodist/tokenizer.h"

static int add_document(const mt_tokenizer *tok, struct shard_writer *w, struct data_buf *doc, tok_ids *ids,
                        uint32_t **u, size_t *u_cap, struct data_shard_result *res, char *err, size_t errlen)
{
    if (doc->len && doc->data[doc->len - 1] == '\n')
        doc->data[--doc->len] = '\0';
    ids->n = 0;
    if (tok_encode(tok, doc->data ? doc->data : "", doc->len, TOK_ADD_BOS | TOK_ADD_EOS, ids))
        abort();
    if (ids->n > *u_cap) {
        *u_cap = ids->n;
        *u = realloc(*u, *u_cap * sizeof **u);
        if (!*u)
            abort();
    }
    for (size_t i = 0; i < ids->n; i++)
        (*u)[i] = (uint32_t)ids->v[i];
    if (shard_writer_add(w, *u, ids->n, err, errlen))
        return -1;
    res->docs++;
    res->tokens += (long)ids->n;
    data_buf_reset(doc);
    return 0;
}

int data_shard_text(const mt_tokenizer *tok, const char *const *inputs, size_t n_inputs, const char *out,
                    int dtype_bytes, struct data_shard_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    uint32_t vocab = (uint32_t)tok_vocab_size(tok);
    if (!dtype_bytes)
        dtype_bytes = vocab <= 65536 ? 2 : 4;
    struct shard_writer *w = shard_writer_open(out, dtype_bytes, vocab, err, errlen);
    if (!w)
        return -1;
    struct data_buf doc = {0};
    tok_ids ids = {0};
    uint32_t *u = NULL;
    size_t u_cap = 0;
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    for (size_t f = 0; f < n_inputs && !rc; f++) {
        FILE *fp = fopen(inputs[f], "rb");
        if (!fp) {
            snprintf(err, errlen, "%s: cannot open: %s", inputs[f], strerror(errno));
            rc = -1;
            break;
        }
        ssize_t len;
        long line_no = 0;
        while (!rc && (len = getline(&line, &cap, fp)) > 0) {
            line_no++;
            if (!strcmp(line, DATA_DOC_SEPARATOR "\n"))
                rc = add_document(tok, w, &doc, &ids, &u, &u_cap, res, err, errlen);
            else
                data_buf_append(&doc, line, (size_t)len);
        }
        if (!rc && doc.len) {
            snprintf(err, errlen, "%s:%ld: text after the last '%s' line (not a pretrain.txt from melodist data "
                     "build?)", inputs[f], line_no, DATA_DOC_SEPARATOR);
            rc = -1;
        }
        fclose(fp);
    }
    if (rc)
        shard_writer_abort(w);
    else
        rc = shard_writer_close(w, err, errlen);
    free(line);
    free(u);
    tok_ids_free(&ids);
    data_buf_free(&doc);
    return rc;
}
