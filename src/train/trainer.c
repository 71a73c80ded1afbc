/* The training loop: data, accumulation over micro-batches and processes, clipping, AdamW, evaluation,
 * logging, checkpoints, resume (see train.h and docs/training.md). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint.h"
#include "melodist/nn.h"
#include "melodist/train.h"
#include "trainlog.h"

/* Rows of one step (or one evaluation), all four arrays [rows * T]. */
struct rows {
    int32_t *tokens, *targets, *start, *pos;
    int n;
};

struct run {
    const struct train_options *o;
    struct train_config cfg;
    const char *dir;
    char paths[4][4096 + 64]; /* train cache, valid cache, log, svg */
    int rank, world, accum;   /* accum: micro-batches per process per step */
    mt_tokenizer *tok;
    struct train_corpus train_c, valid_c;
    struct train_loader train_l;
    struct train_model *tm;
    struct adamw opt;
    struct checkpoint_state state;
    struct rows step_rows, eval_rows;
    struct curve curve;
    char *err;
    size_t errlen;
};

static void say(const struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const struct run *r, const char *fmt, ...)
{
    if (r->rank || !r->o->message)
        return;
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    r->o->message(r->o->ctx, text);
}

static int rows_alloc(struct rows *w, int n, int T)
{
    size_t k = (size_t)n * T;
    w->n = n;
    w->tokens = malloc(k * 4), w->targets = malloc(k * 4), w->start = malloc(k * 4), w->pos = malloc(k * 4);
    return w->tokens && w->targets && w->start && w->pos ? 0 : -1;
}

static void rows_free(struct rows *w)
{
    free(w->tokens), free(w->targets), free(w->start), free(w->pos);
}

/* Fills w with the loader's next w->n rows; returns the number of targets. */
static int64_t fill_rows(struct train_loader *l, struct rows *w)
{
    int64_t n = 0;
    for (int i = 0; i < w->n; i++) {
        size_t o = (size_t)i * l->T;
        n += loader_next_row(l, w->tokens + o, w->targets + o, w->start + o, w->pos + o);
    }
    return n;
}

/* Sum of the losses over micro-batches first, first + stride, ... of w (this process's share); with
 * backward, loss_scale * the gradient of that sum is added to the gradients. */
static double run_rows(struct run *r, const struct rows *w, int first, int stride, int backward, float loss_scale)
{
    struct train_model *tm = r->tm;
    double loss = 0;
    for (int m = first; m * tm->B < w->n; m += stride) {
        size_t o = (size_t)m * tm->B * tm->T;
        loss += backward ? train_forward_backward(tm, w->tokens + o, w->targets + o, w->start + o, w->pos + o,
                                                  loss_scale)
                         : train_forward_loss(tm, w->tokens + o, w->targets + o, w->start + o, w->pos + o);
    }
    return loss;
}

/* Mean validation loss over the first eval_batches micro-batches of the validation stream, dealt out to
 * the processes in turn (the same rows whatever the number of processes). */
static double evaluate(struct run *r)
{
    struct train_loader l;
    if (loader_init(&l, &r->valid_c, r->cfg.seed, r->cfg.seq_len, 0))
        return NAN;
    int64_t count = fill_rows(&l, &r->eval_rows);
    loader_free(&l);
    double sum = run_rows(r, &r->eval_rows, r->rank, r->world, 0, 0);
    dist_sum_doubles(&sum, 1);
    return count ? sum / (double)count : NAN;
}

static int save(struct run *r, char *saved, size_t cap)
{
    int ok = 1;
    if (r->rank == 0) {
        struct checkpoint ck = {.dir = r->dir, .tokenizer_path = r->cfg.tokenizer, .keep = r->cfg.keep,
                                .model = r->tm, .opt = &r->opt, .state = r->state};
        ck.state.pos = r->train_l.at;
        ok = !checkpoint_save(&ck, saved, cap, r->err, r->errlen);
        char e2[256];
        if (ok && curve_svg(&r->curve, r->paths[3], "Melodist training", e2, sizeof e2))
            say(r, "warning: %s", e2);
    }
    if (!dist_all_ok(ok)) {
        if (r->rank)
            snprintf(r->err, r->errlen, "rank 0 could not write the checkpoint");
        return -1;
    }
    return 0;
}

/* Tokenises the sources into the run directory (rank 0), unless resuming with caches already there. */
static int prepare_data(struct run *r)
{
    int ok = 1;
    if (r->rank == 0) {
        struct stat st;
        int have = !stat(r->paths[0], &st) && !stat(r->paths[1], &st);
        if (!(r->o->resume && have)) {
            const char *src[TRAIN_MAX_SOURCES];
            for (int i = 0; i < r->cfg.n_sources; i++)
                src[i] = r->cfg.sources[i];
            say(r, "tokenising %d data source%s into %s", r->cfg.n_sources, r->cfg.n_sources > 1 ? "s" : "", r->dir);
            ok = !corpus_build(src, (size_t)r->cfg.n_sources, r->tok, r->cfg.valid_fraction, r->cfg.seed,
                               r->paths[0], r->paths[1], r->err, r->errlen);
        }
    }
    if (!dist_all_ok(ok))
        return -1;
    if (corpus_open(r->paths[0], &r->train_c, r->err, r->errlen) ||
        corpus_open(r->paths[1], &r->valid_c, r->err, r->errlen))
        return -1;
    for (uint64_t i = 0; i < r->train_c.n_tokens; i++)
        if (r->train_c.tokens[i] < 0 || r->train_c.tokens[i] >= r->cfg.model.vocab_size) {
            snprintf(r->err, r->errlen, "%s: token id %d outside the model's vocabulary of %d (the cache was made "
                     "with another tokenizer: delete it)", r->paths[0], r->train_c.tokens[i], r->cfg.model.vocab_size);
            return -1;
        }
    say(r, "data: %" PRIu64 " training documents (%" PRIu64 " tokens), %" PRIu64 " validation documents (%" PRIu64
        " tokens)", r->train_c.n_docs, r->train_c.n_tokens, r->valid_c.n_docs, r->valid_c.n_tokens);
    return 0;
}

/* Continued training: the model (shape and weights) comes from the init_from checkpoint. */
static int load_init(struct run *r, struct model **m)
{
    if (!r->cfg.init_from[0])
        return 0;
    if (model_load(r->cfg.init_from, m, r->err, r->errlen))
        return -1;
    r->cfg.model = (*m)->config;
    if (r->cfg.seq_len > r->cfg.model.max_position_embeddings) {
        snprintf(r->err, r->errlen, "\"data\".\"seq_len\" %d exceeds max_position_embeddings %d of %s",
                 r->cfg.seq_len, r->cfg.model.max_position_embeddings, r->cfg.init_from);
        return -1;
    }
    return 0;
}

static int prepare_model(struct run *r)
{
    struct model *init = NULL;
    struct model_config *mc = &r->cfg.model;
    int tv = tok_vocab_size(r->tok), rc = -1;
    if (load_init(r, &init))
        goto out;
    if (!mc->vocab_size)
        mc->vocab_size = tv;
    if (mc->vocab_size < tv) {
        snprintf(r->err, r->errlen, "model vocab_size %d is smaller than the tokenizer's %d", mc->vocab_size, tv);
        goto out;
    }
    if (!init) {
        mc->bos_token_id = tok_bos_id(r->tok) >= 0 ? tok_bos_id(r->tok) : mc->bos_token_id;
        mc->eos_token_id = tok_eos_id(r->tok) >= 0 ? tok_eos_id(r->tok) : mc->eos_token_id;
        mc->pad_token_id = tok_pad_id(r->tok) >= 0 ? tok_pad_id(r->tok) : mc->eos_token_id;
    }
    r->tm = train_model_new_recompute(mc, r->cfg.micro_batch, r->cfg.seq_len, r->cfg.recompute, r->err, r->errlen);
    if (!r->tm)
        goto out;
    if (adamw_init(&r->opt, r->tm->n_params)) {
        snprintf(r->err, r->errlen, "out of memory for the optimizer state");
        goto out;
    }
    char latest[4096 + 64];
    if (r->o->resume && !checkpoint_latest(r->dir, latest, sizeof latest)) {
        if (checkpoint_load(latest, r->tm, &r->opt, &r->state, r->err, r->errlen))
            goto out;
        if (r->state.seq_len != r->cfg.seq_len || r->state.batch_size != r->cfg.batch_size ||
            r->state.seed != r->cfg.seed) {
            snprintf(r->err, r->errlen, "%s was written with seq_len %d, batch_size %d, seed %" PRIu64 "; the config "
                     "now says %d, %d, %" PRIu64 ": restore them to resume, or start a new run directory", latest,
                     r->state.seq_len, r->state.batch_size, r->state.seed, r->cfg.seq_len, r->cfg.batch_size,
                     r->cfg.seed);
            goto out;
        }
        say(r, "resuming from %s (step %" PRId64 ")", latest, r->state.step);
        rc = 0;
        goto out;
    }
    if (r->o->resume) {
        say(r, "no checkpoint in %s: starting from step 0", r->dir);
    } else if (!checkpoint_latest(r->dir, latest, sizeof latest)) {
        /* A fresh run would reach a step an earlier run already saved and lose its work at that save. */
        snprintf(r->err, r->errlen, "%s already holds a run (newest checkpoint %s): pass --resume to continue "
                 "it, or give a new directory with --out", r->dir, latest);
        goto out;
    }
    r->state = (struct checkpoint_state){.seed = r->cfg.seed, .seq_len = r->cfg.seq_len,
                                         .batch_size = r->cfg.batch_size};
    rc = init ? train_model_copy_from(r->tm, init, r->err, r->errlen)
              : train_model_init_random(r->tm, r->cfg.seed, r->cfg.init_std, r->err, r->errlen);
out:
    model_free(init);
    return rc;
}

/* All-reduce, clip and apply one AdamW step; returns the gradient norm before clipping. */
static double optimizer_step(struct run *r, float lr)
{
    struct train_model *tm = r->tm;
    dist_sum_floats(tm->grads, tm->n_params);
    double norm = grad_clip(tm->grads, tm->n_params, r->cfg.grad_clip);
    adamw_begin_step(&r->opt);
    for (int i = 0; i < tm->n_tensors; i++) {
        const struct train_tensor *t = &tm->tensors[i];
        adamw_update(&r->opt, t->offset, tm->params + t->offset, tm->grads + t->offset, t->size, lr,
                     t->decay ? r->cfg.weight_decay : 0.0, &r->cfg.adamw);
    }
    return norm;
}

static enum train_result loop(struct run *r)
{
    const struct train_config *c = &r->cfg;
    int64_t tokens_per_step = (int64_t)c->batch_size * c->seq_len;
    double t_begin = trainlog_now();
    int64_t first = r->state.step;
    char saved[4096 + 64];
    while (r->state.step < c->steps) {
        double t0 = trainlog_now();
        float lr = lr_at(&c->schedule, r->state.step);
        memset(r->tm->grads, 0, r->tm->n_params * sizeof(float));
        int64_t targets = fill_rows(&r->train_l, &r->step_rows);
        double loss = run_rows(r, &r->step_rows, r->rank, r->world, 1, targets ? 1.0f / (float)targets : 0);
        dist_sum_doubles(&loss, 1);
        loss /= (double)(targets ? targets : 1);
        double norm = optimizer_step(r, lr), dt = trainlog_now() - t0;
        r->state.step++;
        r->state.tokens_seen += tokens_per_step;
        if (!isfinite(loss) || !isfinite(norm)) {
            char last[4096 + 64] = "none (no checkpoint was written yet)";
            checkpoint_latest(r->dir, last, sizeof last);
            snprintf(r->err, r->errlen, "step %" PRId64 ": the loss became %s (gradient norm %g); stopping. The last "
                     "good checkpoint is %s. Lower \"lr\", raise \"warmup_steps\" or set \"grad_clip\", then --resume",
                     r->state.step, isnan(loss) ? "NaN" : "infinite", norm, last);
            return TRAIN_FAILED;
        }
        double valid = NAN;
        int last_step = r->state.step == c->steps;
        if ((c->eval_every && r->state.step % c->eval_every == 0) || last_step)
            valid = evaluate(r);
        double per_step = (trainlog_now() - t_begin) / (double)(r->state.step - first);
        struct train_progress p = {.step = r->state.step, .steps = c->steps, .loss = loss, .lr = lr,
                                   .grad_norm = norm, .tokens_per_s = (double)tokens_per_step / dt,
                                   .eta_s = per_step * (double)(c->steps - r->state.step), .valid_loss = valid};
        if (r->rank == 0 && trainlog_step(r->paths[2], &p, &r->curve, r->err, r->errlen))
            return TRAIN_FAILED;
        int stop = r->o->stop && *r->o->stop;
        stop = !dist_all_ok(!stop);
        if (r->state.step % c->save_every == 0 || last_step || stop) {
            if (save(r, saved, sizeof saved))
                return TRAIN_FAILED;
            p.saved = saved;
        }
        if (r->rank == 0 && r->o->progress)
            r->o->progress(r->o->ctx, &p);
        if (stop)
            return TRAIN_STOPPED;
    }
    return TRAIN_DONE;
}

static int setup(struct run *r)
{
    const struct train_options *o = r->o;
    if (train_config_load(o->config_path, &r->cfg, r->err, r->errlen))
        return -1;
    if (o->out_dir && (size_t)snprintf(r->cfg.out_dir, sizeof r->cfg.out_dir, "%s", o->out_dir) >= 4096) {
        snprintf(r->err, r->errlen, "--out path too long");
        return -1;
    }
    r->dir = r->cfg.out_dir;
    r->rank = dist_rank(), r->world = dist_size();
    if (r->cfg.batch_size % (r->cfg.micro_batch * r->world)) {
        snprintf(r->err, r->errlen, "batch_size %d must be a multiple of micro_batch %d x %d processes",
                 r->cfg.batch_size, r->cfg.micro_batch, r->world);
        return -1;
    }
    r->accum = r->cfg.batch_size / (r->cfg.micro_batch * r->world);
    if (r->cfg.threads)
        nn_set_threads(r->cfg.threads);
    static const char *const names[] = {"data-train.tok", "data-valid.tok", "train_log.jsonl", "loss.svg"};
    for (int i = 0; i < 4; i++)
        snprintf(r->paths[i], sizeof r->paths[i], "%s/%s", r->dir, names[i]);
    int ok = r->rank || !mkdir(r->dir, 0755) || errno == EEXIST;
    if (!dist_all_ok(ok)) {
        snprintf(r->err, r->errlen, "%s: cannot create the run directory: %s", r->dir, strerror(errno));
        return -1;
    }
    char terr[512];
    if (!(r->tok = tok_load(r->cfg.tokenizer, terr, sizeof terr))) {
        snprintf(r->err, r->errlen, "tokenizer (the config's \"tokenizer\"): %s", terr);
        return -1;
    }
    if (prepare_model(r) || prepare_data(r))
        return -1;
    if (rows_alloc(&r->step_rows, r->cfg.batch_size, r->cfg.seq_len) ||
        rows_alloc(&r->eval_rows, r->cfg.eval_batches * r->cfg.micro_batch, r->cfg.seq_len) ||
        loader_init(&r->train_l, &r->train_c, r->cfg.seed, r->cfg.seq_len, 1)) {
        snprintf(r->err, r->errlen, "out of memory for the batches");
        return -1;
    }
    r->train_l.at = r->state.pos;
    if (r->rank == 0) {
        if (!o->resume) /* a fresh run starts a fresh log */
            remove(r->paths[2]);
        if (trainlog_resume(r->paths[2], r->state.step, &r->curve, r->err, r->errlen))
            return -1;
    }
    say(r, "model: %zu parameters (%d layers, hidden %d, %d/%d heads, vocab %d); %d process%s x %d threads, "
        "%d micro-batch%s of %d x %d tokens per process per step", r->tm->n_params, r->cfg.model.n_layers,
        r->cfg.model.dim, r->cfg.model.n_heads, r->cfg.model.n_kv_heads, r->cfg.model.vocab_size, r->world,
        r->world > 1 ? "es" : "", nn_threads(), r->accum, r->accum > 1 ? "es" : "", r->cfg.micro_batch,
        r->cfg.seq_len);
    return 0;
}

enum train_result train_run(const struct train_options *o, char *err, size_t errlen)
{
    struct run r = {.o = o, .err = err, .errlen = errlen};
    enum train_result res = setup(&r) ? TRAIN_FAILED : loop(&r);
    if (res == TRAIN_FAILED && r.world > 1)
        snprintf(err + strlen(err), errlen - strlen(err), " (process %d of %d)", r.rank, r.world);
    rows_free(&r.step_rows);
    rows_free(&r.eval_rows);
    loader_free(&r.train_l);
    corpus_close(&r.train_c);
    corpus_close(&r.valid_c);
    train_model_free(r.tm);
    adamw_free(&r.opt);
    tok_free(r.tok);
    curve_free(&r.curve);
    return res;
}
