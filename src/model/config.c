/* InternLM2 config.json: fields, defaults (InternLM2Config's constructor) and sanity limits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/json.h"
#include "melodist/model.h"

#define LIMIT (1 << 24) /* no dimension of a real model comes near this; keeps size arithmetic in range */

static int get_int(const struct json *cfg, const char *key, int fallback, int *out, char *err, size_t errlen)
{
    const struct json *v = json_get(cfg, key);
    if (!v || v->type == JSON_NULL) {
        if (fallback < 0) {
            snprintf(err, errlen, "config.json: missing \"%s\"", key);
            return -1;
        }
        *out = fallback;
        return 0;
    }
    if (v->type != JSON_NUMBER || v->number != floor(v->number) || v->number < 1 || v->number > LIMIT) {
        snprintf(err, errlen, "config.json: \"%s\" must be an integer between 1 and %d", key, LIMIT);
        return -1;
    }
    *out = (int)v->number;
    return 0;
}

static int get_float(const struct json *cfg, const char *key, double fallback, float *out, char *err,
                     size_t errlen)
{
    const struct json *v = json_get(cfg, key);
    if (!v || v->type == JSON_NULL) {
        *out = (float)fallback;
        return 0;
    }
    if (v->type != JSON_NUMBER || !(v->number > 0) || !isfinite((float)v->number)) {
        snprintf(err, errlen, "config.json: \"%s\" must be a positive number", key);
        return -1;
    }
    *out = (float)v->number;
    return 0;
}

/* A token id that may be given as an integer or a list (generation configs use lists for eos). */
static int get_token(const struct json *cfg, const char *key, int fallback)
{
    const struct json *v = json_get(cfg, key);
    if (v && v->type == JSON_ARRAY && v->count)
        v = &v->items[0];
    return v && v->type == JSON_NUMBER && v->number >= 0 && v->number < LIMIT ? (int)v->number : fallback;
}

static int check_architecture(const struct json *cfg, char *err, size_t errlen)
{
    const struct json *arch = json_get(cfg, "architectures"), *type = json_get(cfg, "model_type");
    if (arch && arch->type == JSON_ARRAY) {
        for (size_t i = 0; i < arch->count; i++)
            if (arch->items[i].type == JSON_STRING && !strcmp(arch->items[i].string, "InternLM2ForCausalLM"))
                return 0;
        snprintf(err, errlen, "config.json: unknown architecture '%s' (only InternLM2ForCausalLM is supported)",
                 arch->count && arch->items[0].type == JSON_STRING ? arch->items[0].string : "?");
        return -1;
    }
    if (type && type->type == JSON_STRING && !strcmp(type->string, "internlm2"))
        return 0;
    snprintf(err, errlen, "config.json: unknown architecture (model_type '%s'; only internlm2 is supported)",
             type && type->type == JSON_STRING ? type->string : "missing");
    return -1;
}

static int parse_rope_scaling(const struct json *cfg, struct model_config *c, char *err, size_t errlen)
{
    const struct json *rs = json_get(cfg, "rope_scaling"), *legacy = json_get(cfg, "rotary");
    c->rope_scaling = ROPE_SCALING_NONE;
    c->rope_factor = 1.0f;
    if (legacy && legacy->type == JSON_OBJECT) { /* early 7B form: {"base": theta, "type": "dynamic"} */
        if (get_float(legacy, "base", c->rope_theta, &c->rope_theta, err, errlen))
            return -1;
        const struct json *t = json_get(legacy, "type");
        if (t && t->type == JSON_STRING && !strcmp(t->string, "dynamic"))
            c->rope_scaling = ROPE_SCALING_DYNAMIC;
    }
    if (!rs || rs->type == JSON_NULL)
        return 0;
    const struct json *type = json_get(rs, "type");
    if (rs->type != JSON_OBJECT || !type || type->type != JSON_STRING) {
        snprintf(err, errlen, "config.json: \"rope_scaling\" must be null or {\"type\": ..., \"factor\": ...}");
        return -1;
    }
    if (!strcmp(type->string, "linear"))
        c->rope_scaling = ROPE_SCALING_LINEAR;
    else if (!strcmp(type->string, "dynamic"))
        c->rope_scaling = ROPE_SCALING_DYNAMIC;
    else {
        snprintf(err, errlen, "config.json: rope_scaling type '%s' not supported (linear or dynamic)", type->string);
        return -1;
    }
    if (get_float(rs, "factor", 1.0, &c->rope_factor, err, errlen))
        return -1;
    if (c->rope_factor < 1.0f) {
        snprintf(err, errlen, "config.json: rope_scaling factor must be >= 1");
        return -1;
    }
    return 0;
}

int model_config_parse(const char *text, size_t len, struct model_config *c, char *err, size_t errlen)
{
    char jerr[200];
    struct json *cfg = json_parse(text, len, jerr, sizeof jerr);
    if (!cfg) {
        snprintf(err, errlen, "config.json: %s", jerr);
        return -1;
    }
    memset(c, 0, sizeof *c);
    int rc = -1;
    const struct json *act = json_get(cfg, "hidden_act"), *bias = json_get(cfg, "bias"),
                      *tie = json_get(cfg, "tie_word_embeddings");
    if (cfg->type != JSON_OBJECT) {
        snprintf(err, errlen, "config.json: not a JSON object");
        goto out;
    }
    if (check_architecture(cfg, err, errlen) || get_int(cfg, "hidden_size", -1, &c->dim, err, errlen) ||
        get_int(cfg, "num_hidden_layers", -1, &c->n_layers, err, errlen) ||
        get_int(cfg, "num_attention_heads", -1, &c->n_heads, err, errlen) ||
        get_int(cfg, "num_key_value_heads", c->n_heads, &c->n_kv_heads, err, errlen) ||
        get_int(cfg, "intermediate_size", -1, &c->hidden_dim, err, errlen) ||
        get_int(cfg, "vocab_size", -1, &c->vocab_size, err, errlen) ||
        get_int(cfg, "max_position_embeddings", 2048, &c->max_position_embeddings, err, errlen) ||
        get_float(cfg, "rope_theta", 10000.0, &c->rope_theta, err, errlen) ||
        get_float(cfg, "rms_norm_eps", 1e-6, &c->rms_norm_eps, err, errlen) ||
        parse_rope_scaling(cfg, c, err, errlen))
        goto out;
    if (act && act->type == JSON_STRING && strcmp(act->string, "silu")) {
        snprintf(err, errlen, "config.json: hidden_act '%s' not supported (InternLM2 uses silu)", act->string);
        goto out;
    }
    if (bias && bias->type == JSON_BOOL && bias->boolean) {
        snprintf(err, errlen, "config.json: \"bias\": true is not supported (released InternLM2 models have none)");
        goto out;
    }
    if (c->dim % c->n_heads || c->n_heads % c->n_kv_heads || (c->dim / c->n_heads) % 2) {
        snprintf(err, errlen,
                 "config.json: hidden_size %d, %d heads, %d key/value heads: need hidden_size divisible by heads "
                 "into an even head size, and heads divisible by key/value heads",
                 c->dim, c->n_heads, c->n_kv_heads);
        goto out;
    }
    if (c->dim > NN_MAX_COLS || c->hidden_dim > NN_MAX_COLS) {
        snprintf(err, errlen, "config.json: hidden_size and intermediate_size must be at most %d", NN_MAX_COLS);
        goto out;
    }
    c->head_dim = c->dim / c->n_heads;
    c->tie_word_embeddings = tie && tie->type == JSON_BOOL && tie->boolean;
    c->bos_token_id = get_token(cfg, "bos_token_id", 1);
    c->eos_token_id = get_token(cfg, "eos_token_id", 2);
    c->pad_token_id = get_token(cfg, "pad_token_id", 0);
    rc = 0;
out:
    json_free(cfg);
    return rc;
}

char *model_config_json(const struct model_config *c)
{
    char scaling[96] = "null";
    if (c->rope_scaling != ROPE_SCALING_NONE)
        snprintf(scaling, sizeof scaling, "{\"type\": \"%s\", \"factor\": %.9g}",
                 c->rope_scaling == ROPE_SCALING_LINEAR ? "linear" : "dynamic", c->rope_factor);
    char *out = malloc(1024);
    if (!out)
        return NULL;
    snprintf(out, 1024,
             "{\n  \"architectures\": [\"InternLM2ForCausalLM\"],\n  \"model_type\": \"internlm2\",\n"
             "  \"hidden_size\": %d,\n  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n"
             "  \"num_key_value_heads\": %d,\n  \"intermediate_size\": %d,\n  \"vocab_size\": %d,\n"
             "  \"max_position_embeddings\": %d,\n  \"rope_theta\": %.9g,\n  \"rope_scaling\": %s,\n"
             "  \"rms_norm_eps\": %.9g,\n  \"tie_word_embeddings\": %s,\n  \"bias\": false,\n"
             "  \"hidden_act\": \"silu\",\n  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n  \"pad_token_id\": %d\n}\n",
             c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->hidden_dim, c->vocab_size, c->max_position_embeddings,
             c->rope_theta, scaling, c->rms_norm_eps, c->tie_word_embeddings ? "true" : "false", c->bos_token_id,
             c->eos_token_id, c->pad_token_id);
    return out;
}
