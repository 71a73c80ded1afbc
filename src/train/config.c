/* The training config file (docs/training.md): model shape, data, schedule, checkpoints. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/json.h"
#include "melodist/train.h"

struct reader {
    const char *path;
    char *err;
    size_t errlen;
};

/* A number member (absent: fallback) that must lie in [lo, hi]. */
static int num(struct reader *r, const struct json *obj, const char *section, const char *key, double fallback,
               double lo, double hi, double *out)
{
    const struct json *v = obj ? json_get(obj, key) : NULL;
    if (!v || v->type == JSON_NULL) {
        *out = fallback;
        return 0;
    }
    if (v->type != JSON_NUMBER || !(v->number >= lo && v->number <= hi)) {
        snprintf(r->err, r->errlen, "%s: \"%s\".\"%s\" must be a number in [%g, %g]", r->path, section, key, lo, hi);
        return -1;
    }
    *out = v->number;
    return 0;
}

static int integer(struct reader *r, const struct json *obj, const char *section, const char *key, double fallback,
                   double lo, double hi, int64_t *out)
{
    double d;
    if (num(r, obj, section, key, fallback, lo, hi, &d))
        return -1;
    if (d != floor(d)) {
        snprintf(r->err, r->errlen, "%s: \"%s\".\"%s\" must be a whole number", r->path, section, key);
        return -1;
    }
    *out = (int64_t)d;
    return 0;
}

static int int32(struct reader *r, const struct json *obj, const char *section, const char *key, double fallback,
                 double lo, double hi, int *out)
{
    int64_t v;
    if (integer(r, obj, section, key, fallback, lo, hi, &v))
        return -1;
    *out = (int)v;
    return 0;
}

static int flag(struct reader *r, const struct json *obj, const char *section, const char *key, int *out)
{
    const struct json *v = obj ? json_get(obj, key) : NULL;
    if (!v || v->type == JSON_NULL) {
        *out = 0;
        return 0;
    }
    if (v->type != JSON_BOOL) {
        snprintf(r->err, r->errlen, "%s: \"%s\".\"%s\" must be true or false", r->path, section, key);
        return -1;
    }
    *out = v->boolean;
    return 0;
}

/* Relative paths are taken from the config file's directory. */
static int path_member(struct reader *r, const struct json *v, const char *what, char *out, size_t cap)
{
    if (!v || v->type != JSON_STRING || !v->len) {
        snprintf(r->err, r->errlen, "%s: %s must be a non-empty path string", r->path, what);
        return -1;
    }
    const char *slash = strrchr(r->path, '/');
    int dir = v->string[0] == '/' || !slash ? 0 : (int)(slash - r->path + 1);
    if ((size_t)snprintf(out, cap, "%.*s%s", dir, r->path, v->string) >= cap) {
        snprintf(r->err, r->errlen, "%s: %s is too long", r->path, what);
        return -1;
    }
    return 0;
}

static const struct json *section(struct reader *r, const struct json *root, const char *key, int required)
{
    const struct json *s = json_get(root, key);
    if ((!s && required) || (s && s->type != JSON_OBJECT)) {
        snprintf(r->err, r->errlen, "%s: \"%s\" must be an object%s", r->path, key, s ? "" : " (it is missing)");
        return NULL;
    }
    return s ? s : root; /* an absent optional section: members fall back to defaults (root has none of them) */
}

/* The model section holds InternLM2 config.json fields; the result goes through model_config_parse so that
 * the same rules apply as to any checkpoint. vocab_size 0 means "from the tokenizer", filled in later. */
static int model_section(struct reader *r, const struct json *m, struct model_config *c)
{
    int dim, layers, heads, kv, hidden, vocab, maxpos, tie = 0;
    double theta, eps;
    const struct json *t = json_get(m, "tie_word_embeddings");
    if (int32(r, m, "model", "hidden_size", 0, 2, 1 << 16, &dim) ||
        int32(r, m, "model", "num_hidden_layers", 0, 1, 1024, &layers) ||
        int32(r, m, "model", "num_attention_heads", 0, 1, 1024, &heads) ||
        int32(r, m, "model", "num_key_value_heads", 0, 0, 1024, &kv) ||
        int32(r, m, "model", "intermediate_size", 0, 1, 1 << 20, &hidden) ||
        int32(r, m, "model", "vocab_size", 0, 0, 1 << 24, &vocab) ||
        int32(r, m, "model", "max_position_embeddings", 2048, 1, 1 << 24, &maxpos) ||
        num(r, m, "model", "rope_theta", 10000, 1, 1e12, &theta) ||
        num(r, m, "model", "rms_norm_eps", 1e-5, 1e-12, 1, &eps))
        return -1;
    if (!dim || !layers || !heads || !hidden) {
        snprintf(r->err, r->errlen, "%s: \"model\" needs hidden_size, num_hidden_layers, num_attention_heads and "
                 "intermediate_size", r->path);
        return -1;
    }
    if (t && t->type == JSON_BOOL)
        tie = t->boolean;
    struct model_config want = {.dim = dim, .n_layers = layers, .n_heads = heads, .n_kv_heads = kv ? kv : heads,
                                .head_dim = dim / heads, .hidden_dim = hidden, .vocab_size = vocab ? vocab : 1,
                                .max_position_embeddings = maxpos, .rope_theta = (float)theta,
                                .rms_norm_eps = (float)eps, .tie_word_embeddings = tie, .bos_token_id = 1,
                                .eos_token_id = 2, .pad_token_id = 0};
    char *json = model_config_json(&want), merr[256];
    int rc = json ? model_config_parse(json, strlen(json), c, merr, sizeof merr) : -1;
    free(json);
    if (rc) {
        snprintf(r->err, r->errlen, "%s: \"model\": %s", r->path, json ? merr : "out of memory");
        return -1;
    }
    c->vocab_size = vocab;
    return 0;
}

int train_config_parse(const char *text, size_t len, const char *path, struct train_config *c, char *err,
                       size_t errlen)
{
    struct reader r = {path, err, errlen};
    char jerr[200];
    struct json *root = json_parse(text, len, jerr, sizeof jerr);
    if (!root || root->type != JSON_OBJECT) {
        snprintf(err, errlen, "%s: %s", path, root ? "the config must be a JSON object" : jerr);
        json_free(root);
        return -1;
    }
    memset(c, 0, sizeof *c);
    int rc = -1;
    /* Continued training takes the model from its checkpoint; training from scratch needs "model". */
    const struct json *init = json_get(root, "init_from");
    int from_checkpoint = init && init->type != JSON_NULL;
    const struct json *model = section(&r, root, "model", !from_checkpoint);
    const struct json *data = model ? section(&r, root, "data", 1) : NULL;
    const struct json *train = data ? section(&r, root, "train", 1) : NULL;
    const struct json *eval = train ? section(&r, root, "eval", 0) : NULL;
    const struct json *ckpt = eval ? section(&r, root, "checkpoint", 1) : NULL;
    if (!ckpt || (!from_checkpoint && model_section(&r, model, &c->model)))
        goto out;
    if (from_checkpoint && path_member(&r, init, "\"init_from\"", c->init_from, sizeof c->init_from))
        goto out;
    if (path_member(&r, json_get(root, "tokenizer"), "\"tokenizer\"", c->tokenizer, sizeof c->tokenizer))
        goto out;
    const struct json *src = json_get(data, "sources");
    if (!src || src->type != JSON_ARRAY || !src->count || src->count > TRAIN_MAX_SOURCES) {
        snprintf(err, errlen, "%s: \"data\".\"sources\" must be a list of 1 to %d paths", path, TRAIN_MAX_SOURCES);
        goto out;
    }
    for (size_t i = 0; i < src->count; i++)
        if (path_member(&r, &src->items[i], "each of \"data\".\"sources\"", c->sources[i], sizeof c->sources[i]))
            goto out;
    c->n_sources = (int)src->count;
    double init_std, lr, min_lr, clip, b1, b2, eps, wd, threads;
    int64_t warmup, seed;
    if (num(&r, root, "init_std", "init_std", 0.02, 1e-6, 10, &init_std) ||
        num(&r, data, "data", "valid_fraction", 0.02, 1e-6, 0.5, &c->valid_fraction) ||
        int32(&r, data, "data", "seq_len", 256, 2, 1 << 20, &c->seq_len) ||
        int32(&r, train, "train", "batch_size", 8, 1, 1 << 20, &c->batch_size) ||
        int32(&r, train, "train", "micro_batch", c->batch_size, 1, c->batch_size, &c->micro_batch) ||
        integer(&r, train, "train", "steps", 0, 1, 1e12, &c->steps) ||
        num(&r, train, "train", "lr", 1e-3, 0, 3e38, &lr) ||
        num(&r, train, "train", "min_lr", lr / 10, 0, lr, &min_lr) ||
        integer(&r, train, "train", "warmup_steps", 0, 0, 1e12, &warmup) ||
        num(&r, train, "train", "weight_decay", 0.1, 0, 10, &wd) ||
        num(&r, train, "train", "beta1", 0.9, 0, 0.999999, &b1) ||
        num(&r, train, "train", "beta2", 0.95, 0, 0.9999999, &b2) || num(&r, train, "train", "eps", 1e-8, 0, 1, &eps) ||
        num(&r, train, "train", "grad_clip", 1.0, 0, 1e6, &clip) ||
        flag(&r, train, "train", "recompute", &c->recompute) ||
        integer(&r, train, "train", "seed", 1234, 0, 9007199254740992.0, &seed) ||
        int32(&r, eval, "eval", "every", 100, 0, 1e9, &c->eval_every) ||
        int32(&r, eval, "eval", "batches", 4, 1, 1e6, &c->eval_batches) ||
        int32(&r, ckpt, "checkpoint", "every", 500, 1, 1e9, &c->save_every) ||
        int32(&r, ckpt, "checkpoint", "keep", 3, 1, 1e6, &c->keep) ||
        num(&r, root, "threads", "threads", 0, 0, 4096, &threads))
        goto out;
    if (!c->steps) {
        snprintf(err, errlen, "%s: \"train\".\"steps\" is required", path);
        goto out;
    }
    if (c->batch_size % c->micro_batch) {
        snprintf(err, errlen, "%s: \"train\".\"batch_size\" (%d) must be a multiple of \"micro_batch\" (%d)", path,
                 c->batch_size, c->micro_batch);
        goto out;
    }
    if (!from_checkpoint && c->seq_len > c->model.max_position_embeddings) {
        snprintf(err, errlen, "%s: \"data\".\"seq_len\" %d exceeds the model's max_position_embeddings %d", path,
                 c->seq_len, c->model.max_position_embeddings);
        goto out;
    }
    const char *d = json_string_or(train, "decay", "cosine");
    enum lr_decay kind = !strcmp(d, "cosine") ? LR_COSINE : !strcmp(d, "linear") ? LR_LINEAR : LR_CONSTANT;
    if (kind == LR_CONSTANT && strcmp(d, "constant")) {
        snprintf(err, errlen, "%s: \"train\".\"decay\" must be \"cosine\", \"linear\" or \"constant\"", path);
        goto out;
    }
    const struct json *dir = json_get(ckpt, "dir");
    if (path_member(&r, dir, "\"checkpoint\".\"dir\"", c->out_dir, sizeof c->out_dir))
        goto out;
    c->init_std = (float)init_std;
    c->schedule = (struct lr_schedule){(float)lr, (float)min_lr, warmup, c->steps, kind};
    c->adamw = (struct adamw_config){b1, b2, eps};
    c->weight_decay = wd;
    c->grad_clip = (float)clip;
    c->seed = (uint64_t)seed;
    c->threads = (int)threads;
    rc = 0;
out:
    json_free(root);
    return rc;
}

int train_config_load(const char *path, struct train_config *c, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (size_t got = 1; got;) {
        if (len + 4096 > cap) {
            char *p = realloc(text, cap = 2 * cap + 4096);
            if (!p) {
                free(text);
                fclose(f);
                snprintf(err, errlen, "%s: out of memory", path);
                return -1;
            }
            text = p;
        }
        got = fread(text + len, 1, cap - len, f);
        len += got;
    }
    fclose(f);
    int rc = train_config_parse(text, len, path, c, err, errlen);
    free(text);
    return rc;
}
