/* melodist finetune: LoRA / QLoRA SFT over a frozen base (see finetune.h, docs/finetune.md).
 * Checkpoints: DIR/checkpoint-NNNNNNNN/ holding the adapter (PEFT files) and training_state.safetensors
 * (AdamW moments, the step as metadata), written as a .tmp directory and renamed. The data order is a pure
 * function of the seed and the step, so the step alone resumes it. */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint.h"
#include "melodist/finetune.h"
#include "melodist/json.h"
#include "melodist/nn.h"
#include "trainlog.h"

/* ---- config ---- */

static const struct json *member(const struct json *o, const char *key, enum json_type type)
{
    const struct json *v = o && o->type == JSON_OBJECT ? json_get(o, key) : NULL;
    return v && v->type == type ? v : NULL;
}

static double number(const struct json *o, const char *key, double fallback)
{
    const struct json *v = member(o, key, JSON_NUMBER);
    return v ? v->number : fallback;
}

static int flag(const struct json *o, const char *key, int fallback)
{
    const struct json *v = member(o, key, JSON_BOOL);
    return v ? v->boolean : fallback;
}

/* A path relative to the config file's directory. */
static void path_of(const struct json *o, const char *key, const char *config_dir, char *out, size_t cap)
{
    const struct json *v = member(o, key, JSON_STRING);
    if (!v)
        return;
    if (v->string[0] == '/')
        snprintf(out, cap, "%s", v->string);
    else
        snprintf(out, cap, "%s/%s", config_dir, v->string);
}

static int parse(const struct json *j, const char *dir, struct finetune_config *c, char *err, size_t errlen)
{
    const struct json *data = member(j, "data", JSON_OBJECT), *lora = member(j, "lora", JSON_OBJECT);
    const struct json *quant = member(j, "quantization", JSON_OBJECT), *optim = member(j, "optim", JSON_OBJECT);
    const struct json *sched = member(j, "schedule", JSON_OBJECT);
    path_of(j, "pretrained_model_name_or_path", dir, c->base, sizeof c->base);
    path_of(j, "tokenizer", dir, c->tokenizer, sizeof c->tokenizer);
    path_of(data, "train", dir, c->train_data, sizeof c->train_data);
    path_of(data, "valid", dir, c->valid_data, sizeof c->valid_data);
    path_of(j, "work_dir", dir, c->out_dir, sizeof c->out_dir);
    const struct json *task = member(data, "task", JSON_STRING);
    snprintf(c->task, sizeof c->task, "%s", task ? task->string : "");
    const struct json *system = member(data, "system", JSON_STRING);
    c->has_system = system != NULL;
    snprintf(c->system, sizeof c->system, "%s", system ? system->string : "");
    if (!c->base[0] || !c->train_data[0]) {
        snprintf(err, errlen, "\"pretrained_model_name_or_path\" and \"data\": {\"train\"} are required");
        return -1;
    }
    if (!c->tokenizer[0] && snprintf(c->tokenizer, sizeof c->tokenizer, "%s/tokenizer.model", c->base) >= 4096) {
        snprintf(err, errlen, "\"pretrained_model_name_or_path\" is too long");
        return -1;
    }
    c->max_length = (int)number(j, "max_length", 2048);
    c->pack = flag(j, "pack_to_max_length", 1);
    c->recompute = flag(j, "use_activation_checkpointing", 1);
    c->lora = (struct lora_config){.r = (int)number(lora, "r", 64), .alpha = (float)number(lora, "lora_alpha", 16),
                                   .dropout = (float)number(lora, "lora_dropout", 0.1), .targets = LORA_ALL_TARGETS};
    const struct json *dtype = member(lora, "adapter_dtype", JSON_STRING);
    c->lora.bf16 = dtype && !strcmp(dtype->string, "bfloat16");
    if (dtype && !c->lora.bf16 && strcmp(dtype->string, "float32")) {
        snprintf(err, errlen, "\"lora\": \"adapter_dtype\" is \"float32\" or \"bfloat16\", not \"%s\"", dtype->string);
        return -1;
    }
    const struct json *targets = member(lora, "target_modules", JSON_ARRAY);
    if (targets)
        c->lora.targets = 0;
    for (size_t i = 0; targets && i < targets->count; i++) {
        int k = targets->items[i].type == JSON_STRING ? lora_target_parse(targets->items[i].string) : -1;
        if (k < 0) {
            snprintf(err, errlen, "\"lora\": \"target_modules\" may hold only wqkv, wo, w1, w2, w3, output");
            return -1;
        }
        c->lora.targets |= 1u << k;
    }
    const struct json *qtype = member(quant, "bnb_4bit_quant_type", JSON_STRING);
    c->lora.nf4 = flag(quant, "load_in_4bit", 0);
    c->lora.double_quant = flag(quant, "bnb_4bit_use_double_quant", 1);
    /* transformers' BitsAndBytesConfig: modules left unquantised; unset, the head ("output" in InternLM2) */
    const struct json *skip = member(quant, "llm_int8_skip_modules", JSON_ARRAY);
    c->lora.nf4_output = skip != NULL;
    for (size_t i = 0; skip && i < skip->count; i++) {
        const struct json *name = &skip->items[i];
        if (name->type != JSON_STRING || strcmp(name->string, "output")) {
            snprintf(err, errlen, "\"quantization\": \"llm_int8_skip_modules\" may hold only \"output\" (the "
                     "decoder's matrices are always quantised)");
            return -1;
        }
        c->lora.nf4_output = 0;
    }
    if (c->lora.nf4 && qtype && strcmp(qtype->string, "nf4")) {
        snprintf(err, errlen, "\"quantization\": only \"bnb_4bit_quant_type\": \"nf4\" is supported");
        return -1;
    }
    const struct json *betas = member(optim, "betas", JSON_ARRAY), *otype = member(optim, "type", JSON_STRING);
    c->adamw_8bit = otype && !strcmp(otype->string, "AdamW8bit");
    if (otype && !c->adamw_8bit && strcmp(otype->string, "AdamW")) {
        snprintf(err, errlen, "\"optim\": \"type\" is \"AdamW\" (torch.optim.AdamW) or \"AdamW8bit\" "
                 "(bitsandbytes.optim.AdamW8bit), not \"%s\"", otype->string);
        return -1;
    }
    c->lr = number(optim, "lr", 2e-4);
    c->weight_decay = number(optim, "weight_decay", 0);
    c->adamw = (struct adamw_config){0.9, 0.999, number(optim, "eps", 1e-8)};
    if (betas && betas->count == 2 && betas->items[0].type == JSON_NUMBER && betas->items[1].type == JSON_NUMBER)
        c->adamw.beta1 = betas->items[0].number, c->adamw.beta2 = betas->items[1].number;
    c->max_norm = (float)number(optim, "max_norm", 1);
    c->warmup_ratio = number(sched, "warmup_ratio", 0.03);
    c->max_epochs = (int)number(sched, "max_epochs", 3);
    c->max_steps = (int64_t)number(sched, "max_steps", 0);
    c->batch_size = (int)number(j, "batch_size", 1);
    c->accumulative_counts = (int)number(j, "accumulative_counts", 16);
    c->seed = (uint64_t)number(j, "seed", 0);
    c->eval_every = (int)number(j, "evaluate_every", 0);
    c->eval_batches = (int)number(j, "eval_batches", 4);
    c->save_every = (int)number(j, "save_steps", 500);
    c->keep = (int)number(j, "save_total_limit", 2);
    c->threads = (int)number(j, "threads", 0);
    if (c->max_length < 2 || c->batch_size < 1 || c->accumulative_counts < 1 || c->max_epochs < 1 ||
        c->save_every < 1 || c->keep < 1 || c->lora.r < 1) {
        snprintf(err, errlen, "max_length >= 2, batch_size, accumulative_counts, schedule.max_epochs, save_steps, "
                 "save_total_limit and lora.r >= 1 are required");
        return -1;
    }
    return 0;
}

int finetune_config_load(const char *path, struct finetune_config *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    struct json *j = json_load(path, 1 << 20, err, errlen);
    if (!j)
        return -1;
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    char msg[900];
    int rc = parse(j, dirname(copy), c, msg, sizeof msg);
    if (rc)
        snprintf(err, errlen, "%s: %s", path, msg);
    json_free(j);
    return rc;
}

/* ---- the run ---- */

struct run {
    const struct train_options *o;
    struct finetune_config cfg;
    const char *dir;
    char log_path[4200], svg_path[4200];
    int rank, world;
    mt_tokenizer *tok;
    struct model *base;
    struct lora *lora;
    struct train_model *tm;
    struct adamw opt;
    struct sft_rows train, valid;
    int64_t step, steps;
    int32_t *buf; /* tokens, targets, start, pos of one micro-batch */
    struct curve curve;
    char *err;
    size_t errlen;
};

static void say(const struct run *r, const char *text)
{
    if (!r->rank && r->o->message)
        r->o->message(r->o->ctx, text);
}

/* Row k of the training stream: epoch k / n_rows, shuffled per epoch by the seed. */
static size_t stream_row(const struct run *r, int64_t k)
{
    uint64_t n = r->train.n_rows, epoch = (uint64_t)k / n, i = (uint64_t)k % n;
    /* a seeded affine permutation of 0..n-1 per epoch: a * i + b mod n with a coprime to n */
    uint64_t s = r->cfg.seed ^ (epoch * 0x9E3779B97F4A7C15ull), a = train_splitmix64(&s) % n, b = train_splitmix64(&s) % n;
    for (a = a | 1; n > 1; a += 2) {
        uint64_t x = a % n, y = n;
        while (y) {
            uint64_t t = x % y;
            x = y, y = t;
        }
        if (x == 1)
            break;
    }
    return n > 1 ? (size_t)((a % n * i + b) % n) : 0;
}

/* Summed loss of micro-batch rows [first, first + B) of set (or of the stream at k when set is NULL). */
static double micro_batch(struct run *r, const struct sft_rows *set, int64_t first, int backward, float scale,
                          int64_t *targets)
{
    int B = r->cfg.batch_size, T = r->cfg.max_length;
    int32_t *tok = r->buf, *tgt = tok + B * T, *start = tgt + B * T, *pos = start + B * T;
    for (int b = 0; b < B; b++) {
        size_t row = set ? (size_t)(first + b) % set->n_rows : stream_row(r, first + b);
        size_t o = (size_t)b * T;
        *targets += sft_row(set ? set : &r->train, row, tok + o, tgt + o, start + o, pos + o);
    }
    r->lora->dropout_seed = r->cfg.seed ^ ((uint64_t)first * 0xD1B54A32D192ED03ull);
    return backward ? train_forward_backward(r->tm, tok, tgt, start, pos, scale)
                    : train_forward_loss(r->tm, tok, tgt, start, pos);
}

/* Mean loss over the first eval_batches micro-batches of the validation rows, no dropout. */
static double evaluate(struct run *r)
{
    if (!r->valid.n_rows)
        return NAN;
    int64_t count = 0;
    double sum = 0;
    r->lora->training = 0;
    for (int m = r->rank; m < r->cfg.eval_batches; m += r->world)
        sum += micro_batch(r, &r->valid, (int64_t)m * r->cfg.batch_size, 0, 0, &count);
    r->lora->training = 1;
    double both[2] = {sum, (double)count};
    dist_sum_doubles(both, 2);
    return both[1] > 0 ? both[0] / both[1] : NAN;
}

static int write_adapter(struct run *r, const char *dir)
{
    if (mkdir(dir, 0755) && errno != EEXIST) {
        snprintf(r->err, r->errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    return lora_save(r->lora, dir, r->cfg.base, r->err, r->errlen);
}

/* The optimizer state as stored in training_state.safetensors: f32 moments, or 8-bit codes and block absmaxes. */
static size_t optimizer_tensors(const struct adamw *o, struct st_out *t)
{
    int64_t n = (int64_t)o->n, blocks = (n + ADAMW8_BLOCK - 1) / ADAMW8_BLOCK;
    if (!o->qm) {
        t[0] = (struct st_out){"adamw.m", ST_F32, 1, {n}, o->m};
        t[1] = (struct st_out){"adamw.v", ST_F32, 1, {n}, o->v};
        return 2;
    }
    t[0] = (struct st_out){"adamw8bit.m", ST_U8, 1, {n}, o->qm};
    t[1] = (struct st_out){"adamw8bit.v", ST_U8, 1, {n}, o->qv};
    t[2] = (struct st_out){"adamw8bit.m_absmax", ST_F32, 1, {blocks}, o->am};
    t[3] = (struct st_out){"adamw8bit.v_absmax", ST_F32, 1, {blocks}, o->av};
    return 4;
}

static int save_checkpoint(struct run *r, char *saved, size_t cap)
{
    char tmp[4300], path[4400];
    snprintf(saved, cap, "%s/checkpoint-%08" PRId64, r->dir, r->step);
    snprintf(tmp, sizeof tmp, "%s.tmp", saved);
    if (write_adapter(r, tmp))
        return -1;
    char step[32];
    snprintf(step, sizeof step, "%" PRId64, r->step);
    const char *meta[] = {"format", "pt", "step", step};
    struct st_out t[4];
    snprintf(path, sizeof path, "%s/training_state.safetensors", tmp);
    if (st_write(path, t, optimizer_tensors(&r->opt, t), meta, 2, r->err, r->errlen))
        return -1;
    if (rename(tmp, saved)) {
        snprintf(r->err, r->errlen, "%s: %s", saved, strerror(errno));
        return -1;
    }
    checkpoint_prune(r->dir, r->cfg.keep);
    return write_adapter(r, (snprintf(path, sizeof path, "%s/adapter", r->dir), path));
}

static int resume(struct run *r, const char *ck)
{
    char path[4400];
    struct lora *L = lora_load(ck, r->base, r->err, r->errlen);
    if (!L)
        return -1;
    int same = !lora_copy_params(r->lora, L);
    lora_free(L);
    if (!same) {
        snprintf(r->err, r->errlen, "%s: the adapter's rank or target modules differ from the config's", ck);
        return -1;
    }
    struct st_file f;
    snprintf(path, sizeof path, "%s/training_state.safetensors", ck);
    if (st_open(path, &f, r->err, r->errlen))
        return -1;
    struct st_out want[4];
    size_t n = optimizer_tensors(&r->opt, want);
    const char *step = st_metadata(&f, "step");
    int ok = step != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        const struct st_tensor *t = st_find(&f, want[i].name);
        size_t bytes = (size_t)want[i].shape[0] * (want[i].dtype == ST_U8 ? 1 : sizeof(float));
        ok = t && t->dtype == want[i].dtype && t->nbytes == bytes;
        if (ok)
            memcpy((void *)want[i].data, t->data, bytes);
    }
    if (ok)
        r->step = r->opt.step = strtoll(step, NULL, 10);
    else
        snprintf(r->err, r->errlen, "%s: not a fine-tuning state of this adapter with optimizer %s", path,
                 r->cfg.adamw_8bit ? "AdamW8bit" : "AdamW");
    st_close(&f);
    return ok ? 0 : -1;
}

static int setup(struct run *r)
{
    const struct train_options *o = r->o;
    char msg[9000];
    if (finetune_config_load(o->config_path, &r->cfg, r->err, r->errlen))
        return -1;
    struct finetune_config *c = &r->cfg;
    if (o->out_dir)
        snprintf(c->out_dir, sizeof c->out_dir, "%s", o->out_dir);
    if (!c->out_dir[0]) {
        snprintf(r->err, r->errlen, "no run directory: give --out DIR or \"work_dir\" in the config");
        return -1;
    }
    r->dir = c->out_dir;
    r->rank = dist_rank(), r->world = dist_size();
    if (c->accumulative_counts % r->world) {
        snprintf(r->err, r->errlen, "accumulative_counts %d must be a multiple of the %d processes",
                 c->accumulative_counts, r->world);
        return -1;
    }
    if (c->threads)
        nn_set_threads(c->threads);
    if (!r->rank && mkdir(r->dir, 0755) && errno != EEXIST) {
        snprintf(r->err, r->errlen, "%s: cannot create the run directory: %s", r->dir, strerror(errno));
        return -1;
    }
    snprintf(r->log_path, sizeof r->log_path, "%s/train_log.jsonl", r->dir);
    snprintf(r->svg_path, sizeof r->svg_path, "%s/loss.svg", r->dir);
    char terr[512];
    if (!(r->tok = tok_load(c->tokenizer, terr, sizeof terr))) {
        snprintf(r->err, r->errlen, "tokenizer: %s", terr);
        return -1;
    }
    if (model_load(c->base, &r->base, r->err, r->errlen))
        return -1;
    struct sft_set s;
    if (sft_load(c->train_data, r->tok, c->task, c->has_system ? c->system : NULL, c->max_length, &s, r->err, r->errlen))
        return -1;
    int rc = sft_rows_build(&s, c->max_length, c->pack, c->seed, &r->train);
    sft_free(&s);
    if (!rc && c->valid_data[0]) {
        if (sft_load(c->valid_data, r->tok, c->task, c->has_system ? c->system : NULL, c->max_length, &s, r->err, r->errlen))
            return -1;
        rc = sft_rows_build(&s, c->max_length, c->pack, c->seed, &r->valid);
        sft_free(&s);
    }
    if (rc || !r->train.n_rows) {
        snprintf(r->err, r->errlen, rc ? "out of memory for the SFT rows" : "%s: fewer tokens than one row of "
                 "max_length %d", c->train_data, c->max_length);
        return -1;
    }
    int64_t rows_per_step = (int64_t)c->batch_size * c->accumulative_counts;
    r->steps = ((int64_t)r->train.n_rows * c->max_epochs + rows_per_step - 1) / rows_per_step;
    if (c->max_steps && c->max_steps < r->steps)
        r->steps = c->max_steps;
    int N = c->batch_size * c->max_length;
    r->lora = lora_new(r->base, &c->lora, N, c->seed, r->err, r->errlen);
    r->tm = r->lora ? train_model_new_frozen(r->base, &r->lora->ops, c->batch_size, c->max_length,
                                             c->recompute, r->err, r->errlen) : NULL;
    r->buf = malloc(sizeof(int32_t) * 4 * (size_t)N);
    if (!r->tm || !r->buf || (c->adamw_8bit ? adamw_init_8bit : adamw_init)(&r->opt, r->lora->n_params)) {
        if (r->tm)
            snprintf(r->err, r->errlen, "out of memory for the batch and optimizer state");
        return -1;
    }
    char latest[4200];
    if (o->resume && !checkpoint_latest(r->dir, latest, sizeof latest)) {
        if (resume(r, latest))
            return -1;
        snprintf(msg, sizeof msg, "resuming from %s (step %" PRId64 ")", latest, r->step);
        say(r, msg);
    }
    if (r->step == 0 && r->valid.n_rows) {
        snprintf(msg, sizeof msg, "validation loss of the base model: %.4f", evaluate(r));
        say(r, msg);
    }
    if (!r->rank) {
        if (!o->resume)
            remove(r->log_path);
        if (trainlog_resume(r->log_path, r->step, &r->curve, r->err, r->errlen))
            return -1;
    }
    char nf4[64] = "";
    if (c->lora.nf4)
        snprintf(nf4, sizeof nf4, "; decoder%s NF4, %.1f MB", c->lora.nf4_output ? " and head" : "",
                 (double)lora_base_bytes(r->lora) / 1e6);
    snprintf(msg, sizeof msg, "%s%s%s, base %s (%zu parameters%s); %zu %s adapter parameters (r %d, alpha %g, "
             "dropout %g), %s%s; %zu training rows of %d tokens%s, %zu validation rows; %" PRId64 " steps of %d x %d "
             "rows", c->lora.nf4 ? "QLoRA" : "LoRA", c->task[0] ? " on task " : "", c->task, c->base,
             model_param_count(r->base), nf4, r->lora->n_params, c->lora.bf16 ? "bf16" : "f32", c->lora.r,
             c->lora.alpha, c->lora.dropout, c->adamw_8bit ? "AdamW8bit" : "AdamW",
             c->recompute ? ", activation checkpointing" : "", r->train.n_rows, c->max_length,
             c->pack ? " (packed)" : "", r->valid.n_rows, r->steps, c->accumulative_counts, c->batch_size);
    say(r, msg);
    return 0;
}

static enum train_result loop(struct run *r)
{
    const struct finetune_config *c = &r->cfg;
    int64_t rows_per_step = (int64_t)c->batch_size * c->accumulative_counts, first = r->step;
    struct lr_schedule sched = {(float)c->lr, 0.0f, (int64_t)ceil(c->warmup_ratio * (double)r->steps), r->steps,
                                LR_COSINE};
    double t_begin = trainlog_now();
    char saved[4200];
    while (r->step < r->steps) {
        double t0 = trainlog_now();
        float lr = lr_at(&sched, r->step);
        lora_zero_grads(r->lora);
        int64_t targets = 0, base = r->step * rows_per_step;
        for (int m = 0; m < c->accumulative_counts; m++) /* count the targets of the whole step first */
            for (int b = 0; b < c->batch_size; b++) {
                int32_t *tok = r->buf, *tgt = tok + c->max_length, *st = tgt + c->max_length, *pos = st + c->max_length;
                targets += sft_row(&r->train, stream_row(r, base + (int64_t)m * c->batch_size + b), tok, tgt, st, pos);
            }
        int64_t ignored = 0;
        double loss = 0;
        for (int m = r->rank; m < c->accumulative_counts; m += r->world)
            loss += micro_batch(r, NULL, base + (int64_t)m * c->batch_size, 1,
                                targets ? 1.0f / (float)targets : 0.0f, &ignored);
        dist_sum_doubles(&loss, 1);
        loss /= (double)(targets ? targets : 1);
        double norm = lora_optimizer_step(r->lora, &r->opt, lr, r->cfg.weight_decay, &r->cfg.adamw, r->cfg.max_norm);
        double dt = trainlog_now() - t0;
        r->step++;
        if (!isfinite(loss) || !isfinite(norm)) {
            snprintf(r->err, r->errlen, "step %" PRId64 ": the loss became %s; stopping (lower \"lr\" or set "
                     "\"max_norm\"; --resume continues from the last checkpoint)", r->step, isnan(loss) ? "NaN" : "infinite");
            return TRAIN_FAILED;
        }
        int last = r->step == r->steps;
        double valid = (c->eval_every && r->step % c->eval_every == 0) || last ? evaluate(r) : NAN;
        struct train_progress p = {.step = r->step, .steps = r->steps, .loss = loss, .lr = lr, .grad_norm = norm,
                                   .tokens_per_s = (double)(rows_per_step * c->max_length) / dt,
                                   .eta_s = (trainlog_now() - t_begin) / (double)(r->step - first) * (double)(r->steps - r->step),
                                   .valid_loss = valid};
        if (!r->rank && trainlog_step(r->log_path, &p, &r->curve, r->err, r->errlen))
            return TRAIN_FAILED;
        int stop = !dist_all_ok(!(r->o->stop && *r->o->stop));
        if (r->step % c->save_every == 0 || last || stop) {
            int ok = r->rank || !save_checkpoint(r, saved, sizeof saved);
            char e2[256];
            if (ok && !r->rank && curve_svg(&r->curve, r->svg_path, "Melodist fine-tuning", e2, sizeof e2))
                say(r, e2);
            if (!dist_all_ok(ok))
                return TRAIN_FAILED;
            p.saved = saved;
        }
        if (!r->rank && r->o->progress)
            r->o->progress(r->o->ctx, &p);
        if (stop)
            return TRAIN_STOPPED;
    }
    return TRAIN_DONE;
}

enum train_result finetune_run(const struct train_options *o, char *err, size_t errlen)
{
    struct run r = {.o = o, .err = err, .errlen = errlen};
    enum train_result res = setup(&r) ? TRAIN_FAILED : loop(&r);
    train_model_free(r.tm);
    lora_free(r.lora);
    model_free(r.base);
    tok_free(r.tok);
    adamw_free(&r.opt);
    sft_rows_free(&r.train);
    sft_rows_free(&r.valid);
    curve_free(&r.curve);
    free(r.buf);
    return res;
}
