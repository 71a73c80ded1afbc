/* Checkpoints: DIR/checkpoint-NNNNNNNN/ in Hugging Face layout (config.json, model.safetensors,
 * tokenizer.model, generation_config.json) plus training_state.safetensors (AdamW moments; step, data
 * position and seed as metadata). Written into a .tmp directory, every file fsync'ed, then renamed: a
 * checkpoint directory either is complete or does not exist. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int write_text(const char *path, const char *text, char *err, size_t errlen)
{
    FILE *f = fopen(path, "wb");
    size_t n = strlen(text);
    int ok = f && fwrite(text, 1, n, f) == n;
    ok = f && fclose(f) == 0 && ok;
    if (!ok) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int copy_file(const char *from, const char *to, char *err, size_t errlen)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    char buf[65536];
    size_t n;
    int ok = in && out;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    ok = ok && !ferror(in);
    if (out)
        ok = fclose(out) == 0 && ok;
    if (in)
        fclose(in);
    if (!ok) {
        snprintf(err, errlen, "copying %s to %s: %s", from, to, strerror(errno));
        return -1;
    }
    return 0;
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[4096 + 512];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
    rmdir(dir);
}

/* Steps of the complete checkpoints in dir, ascending; returns the count (at most cap). */
static int list_checkpoints(const char *dir, int64_t *steps, int cap)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t step;
        int used = 0;
        if (sscanf(e->d_name, "checkpoint-%" SCNd64 "%n", &step, &used) == 1 && e->d_name[used] == 0 && n < cap)
            steps[n++] = step;
    }
    closedir(d);
    for (int i = 1; i < n; i++) /* insertion sort: a handful of entries */
        for (int j = i; j > 0 && steps[j - 1] > steps[j]; j--) {
            int64_t t = steps[j];
            steps[j] = steps[j - 1];
            steps[j - 1] = t;
        }
    return n;
}

int checkpoint_latest(const char *dir, char *path, size_t cap)
{
    int64_t steps[4096];
    int n = list_checkpoints(dir, steps, 4096);
    if (!n)
        return -1;
    snprintf(path, cap, "%s/checkpoint-%08" PRId64, dir, steps[n - 1]);
    return 0;
}

void checkpoint_prune(const char *dir, int keep)
{
    int64_t steps[4096];
    int n = list_checkpoints(dir, steps, 4096);
    char path[4096 + 64];
    for (int i = 0; i < n - keep; i++) {
        snprintf(path, sizeof path, "%s/checkpoint-%08" PRId64, dir, steps[i]);
        remove_tree(path);
    }
}

int checkpoint_save(const struct checkpoint *ck, char *saved, size_t saved_cap, char *err, size_t errlen)
{
    char final[4096 + 64], tmp[sizeof final + 8], path[sizeof tmp + 64];
    if ((size_t)snprintf(final, sizeof final, "%s/checkpoint-%08" PRId64, ck->dir, ck->state.step) >= 4096) {
        snprintf(err, errlen, "%s: path too long", ck->dir);
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", final);
    remove_tree(tmp);
    if (mkdir(tmp, 0755)) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    const struct train_model *tm = ck->model;
    char *config = model_config_json(&tm->config), gen[256], meta[8][32];
    snprintf(gen, sizeof gen, "{\n  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n  \"pad_token_id\": %d\n}\n",
             tm->config.bos_token_id, tm->config.eos_token_id, tm->config.pad_token_id);
    const struct checkpoint_state *s = &ck->state;
    snprintf(meta[0], 32, "%" PRId64, s->step);
    snprintf(meta[1], 32, "%" PRIu64, s->pos.epoch);
    snprintf(meta[2], 32, "%" PRIu64, s->pos.doc);
    snprintf(meta[3], 32, "%" PRIu64, s->pos.offset);
    snprintf(meta[4], 32, "%" PRIu64, s->seed);
    snprintf(meta[5], 32, "%d", s->seq_len);
    snprintf(meta[6], 32, "%d", s->batch_size);
    snprintf(meta[7], 32, "%" PRId64, s->tokens_seen);
    const char *pairs[] = {"step", meta[0], "data_epoch", meta[1], "data_doc", meta[2], "data_offset", meta[3],
                           "seed", meta[4], "seq_len", meta[5], "batch_size", meta[6], "tokens_seen", meta[7]};
    struct st_out moments[2] = {
        {.name = "adamw.exp_avg", .dtype = ST_F32, .ndim = 1, .shape = {(int64_t)tm->n_params}, .data = ck->opt->m},
        {.name = "adamw.exp_avg_sq", .dtype = ST_F32, .ndim = 1, .shape = {(int64_t)tm->n_params}, .data = ck->opt->v},
    };
    static const char *const files[] = {"config.json", "generation_config.json", "model.safetensors",
                                         "tokenizer.model", "training_state.safetensors"};
    int rc = -1;
    if (!config) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
#define AT(name) (snprintf(path, sizeof path, "%s/%s", tmp, name), path)
    if (write_text(AT("config.json"), config, err, errlen) ||
        write_text(AT("generation_config.json"), gen, err, errlen) ||
        train_model_save(tm, AT("model.safetensors"), err, errlen) ||
        copy_file(ck->tokenizer_path, AT("tokenizer.model"), err, errlen) ||
        st_write(AT("training_state.safetensors"), moments, 2, pairs, 8, err, errlen))
        goto out;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (fsync_path(AT(files[i]))) {
            snprintf(err, errlen, "%s: fsync: %s", path, strerror(errno));
            goto out;
        }
#undef AT
    if (fsync_path(tmp) || rename(tmp, final) || fsync_path(ck->dir)) {
        snprintf(err, errlen, "%s: %s", final, strerror(errno));
        goto out;
    }
    checkpoint_prune(ck->dir, ck->keep);
    snprintf(saved, saved_cap, "%s", final);
    rc = 0;
out:
    if (rc)
        remove_tree(tmp); /* the previous checkpoints stay as they were */
    free(config);
    return rc;
}

static int meta_u64(const struct st_file *f, const char *key, uint64_t *out, char *err, size_t errlen)
{
    const char *v = st_metadata(f, key);
    char *end;
    if (!v || !*v || (*out = strtoull(v, &end, 10), *end)) {
        snprintf(err, errlen, "%s: training_state.safetensors lacks a valid \"%s\" entry", f->path, key);
        return -1;
    }
    return 0;
}

int checkpoint_load(const char *path, struct train_model *tm, struct adamw *opt, struct checkpoint_state *s,
                    char *err, size_t errlen)
{
    struct model *m = NULL;
    if (model_load(path, &m, err, errlen))
        return -1;
    int rc = train_model_copy_from(tm, m, err, errlen);
    model_free(m);
    if (rc)
        return -1;
    char state[4096 + 64];
    snprintf(state, sizeof state, "%s/training_state.safetensors", path);
    struct st_file f;
    if (st_open(state, &f, err, errlen))
        return -1;
    const struct st_tensor *mt = st_find(&f, "adamw.exp_avg"), *vt = st_find(&f, "adamw.exp_avg_sq");
    uint64_t v[8];
    static const char *const keys[] = {"step", "data_epoch", "data_doc", "data_offset", "seed", "seq_len",
                                       "batch_size", "tokens_seen"};
    rc = -1;
    if (!mt || !vt || mt->dtype != ST_F32 || vt->dtype != ST_F32 || mt->nbytes != tm->n_params * 4 ||
        vt->nbytes != tm->n_params * 4) {
        snprintf(err, errlen, "%s: optimizer state does not match the model (%zu parameters)", state, tm->n_params);
        goto out;
    }
    for (int i = 0; i < 8; i++)
        if (meta_u64(&f, keys[i], &v[i], err, errlen))
            goto out;
    memcpy(opt->m, mt->data, mt->nbytes);
    memcpy(opt->v, vt->data, vt->nbytes);
    opt->step = (int64_t)v[0];
    *s = (struct checkpoint_state){.step = (int64_t)v[0], .pos = {v[1], v[2], v[3]}, .seed = v[4],
                                   .seq_len = (int)v[5], .batch_size = (int)v[6], .tokens_seen = (int64_t)v[7]};
    rc = 0;
out:
    st_close(&f);
    return rc;
}
