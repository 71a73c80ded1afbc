/* melodist data build: two streaming passes over the inputs.
 *   pass 1  every valid tune -> melody fingerprint -> which splits its members suggest (only hashes kept)
 *   pass 2  every tune again: drop invalid and exact duplicates, pick the split of its melody group, write the
 *           pre-training document and the SFT records; knowledge texts and MusicPile records pass through.
 * Everything is written into DIR.tmp and renamed to DIR at the end, so a failed build leaves nothing behind. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hashset.h"
#include "input.h"
#include "melodist/abc_tools.h"
#include "melodist/data.h"
#include "melodist/data_json.h"
#include "melodist/persona.h"
#include "repair.h"
#include "sft.h"
#include "split.h"
#include "tune.h"

struct split_files {
    FILE *pretrain, *xtuner, *openai, *tools;
};

struct builder {
    const struct data_build_options *o;
    struct data_stats *st;
    char *tmp;
    struct split_files files[DATA_SPLIT_COUNT];
    struct hashmap64 groups;      /* pass 1: melody fingerprint -> SUGGEST_* bits */
    struct hashmap64 seen_exact;  /* pass 2: normalised tunes written */
    struct hashmap64 seen_melody; /* pass 2: melodies written */
    struct hashmap64 seen_text;   /* pass 2: knowledge documents and MusicPile records written */
    struct sft_gen *gen;
    int split;                    /* split of the records being emitted */
    int samples[DATA_TASK_COUNT];
    struct data_buf line;
    int write_failed;
    long tunes_scanned;           /* pass 1 */
};

/* ---- output directory ---- */

static const char *const split_dirs[DATA_SPLIT_COUNT] = {"", "valid/", "test/"};
static const char *const split_files_names[] = {"pretrain.txt", "sft.xtuner.jsonl", "sft.openai.jsonl",
                                                "sft.tools.jsonl"};

static char *path_join(const char *dir, const char *sub, const char *name)
{
    size_t n = strlen(dir) + strlen(sub) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p)
        abort();
    snprintf(p, n, "%s/%s%s", dir, sub, name);
    return p;
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Removes a directory this pipeline wrote: only the file names it writes, then the directories themselves.
 * Returns -1 when something else is in there (rmdir fails), leaving it for the user. */
static int remove_build_dir(const char *dir)
{
    for (int s = DATA_SPLIT_COUNT - 1; s >= 0; s--) {
        for (size_t i = 0; i < sizeof split_files_names / sizeof split_files_names[0]; i++) {
            char *p = path_join(dir, split_dirs[s], split_files_names[i]);
            unlink(p);
            free(p);
        }
        if (s) {
            char *p = path_join(dir, split_dirs[s], "");
            int rc = rmdir(p);
            free(p);
            if (rc && errno != ENOENT)
                return -1;
        }
    }
    char *p = path_join(dir, "", "stats.json");
    unlink(p);
    free(p);
    return rmdir(dir) && errno != ENOENT ? -1 : 0;
}

static int is_previous_build(const char *dir)
{
    char *p = path_join(dir, "", "stats.json");
    int yes = exists(p);
    free(p);
    return yes;
}

static int open_outputs(struct builder *b, char *err, size_t errlen)
{
    if (exists(b->tmp) && remove_build_dir(b->tmp)) {
        snprintf(err, errlen, "%s exists and holds files this pipeline did not write; remove it", b->tmp);
        return -1;
    }
    if (mkdir(b->tmp, 0777)) {
        snprintf(err, errlen, "cannot create %s: %s", b->tmp, strerror(errno));
        return -1;
    }
    for (int s = 0; s < DATA_SPLIT_COUNT; s++) {
        if (s) {
            char *d = path_join(b->tmp, split_dirs[s], "");
            int rc = mkdir(d, 0777);
            free(d);
            if (rc) {
                snprintf(err, errlen, "cannot create %s/%s: %s", b->tmp, split_dirs[s], strerror(errno));
                return -1;
            }
        }
        FILE **f[] = {&b->files[s].pretrain, &b->files[s].xtuner, &b->files[s].openai, &b->files[s].tools};
        for (size_t i = 0; i < 4; i++) {
            char *p = path_join(b->tmp, split_dirs[s], split_files_names[i]);
            *f[i] = fopen(p, "wb");
            if (!*f[i]) {
                snprintf(err, errlen, "cannot create %s: %s", p, strerror(errno));
                free(p);
                return -1;
            }
            free(p);
        }
    }
    return 0;
}

static int close_outputs(struct builder *b)
{
    int rc = b->write_failed ? -1 : 0;
    for (int s = 0; s < DATA_SPLIT_COUNT; s++) {
        FILE **f[] = {&b->files[s].pretrain, &b->files[s].xtuner, &b->files[s].openai, &b->files[s].tools};
        for (size_t i = 0; i < 4; i++)
            if (*f[i]) {
                if (ferror(*f[i]) || fclose(*f[i]))
                    rc = -1;
                *f[i] = NULL;
            }
    }
    return rc;
}

static int write_stats(struct builder *b, char *err, size_t errlen)
{
    char *json = data_stats_json(b->st);
    char *p = path_join(b->tmp, "", "stats.json");
    FILE *f = fopen(p, "wb");
    int rc = 0;
    if (!f || fputs(json, f) < 0 || fclose(f)) {
        snprintf(err, errlen, "cannot write %s: %s", p, strerror(errno));
        rc = -1;
    }
    free(p);
    free(json);
    return rc;
}

/* DIR.tmp -> DIR, moving a previous build out of the way first. */
static int publish(struct builder *b, char *err, size_t errlen)
{
    const char *out = b->o->out_dir;
    size_t n = strlen(out) + 8;
    char *old = malloc(n);
    if (!old)
        abort();
    snprintf(old, n, "%s.old", out);
    int rc = 0;
    if (exists(out)) {
        if (exists(old) && remove_build_dir(old)) {
            snprintf(err, errlen, "%s exists and holds files this pipeline did not write; remove it", old);
            rc = -1;
        } else if (rename(out, old)) {
            snprintf(err, errlen, "cannot move the previous build %s aside: %s", out, strerror(errno));
            rc = -1;
        }
    }
    if (!rc && rename(b->tmp, out)) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", b->tmp, out, strerror(errno));
        rc = -1;
    }
    if (!rc && exists(old))
        remove_build_dir(old);
    free(old);
    return rc;
}

/* ---- records ---- */

static void put(struct builder *b, FILE *f, const struct data_buf *s)
{
    if (fwrite(s->data, 1, s->len, f) != s->len)
        b->write_failed = 1;
}

static void emit_record(void *ctx, enum data_task task, int zh, const char *input, const char *output)
{
    struct builder *b = ctx;
    const char *system = zh ? MELODIST_PERSONA_ZH : MELODIST_PERSONA_EN;
    struct data_buf *l = &b->line;

    data_buf_reset(l);
    data_buf_puts(l, "{\"conversation\": [{\"system\": ");
    data_json_cstring(l, system);
    data_buf_puts(l, ", \"input\": ");
    data_json_cstring(l, input);
    data_buf_puts(l, ", \"output\": ");
    data_json_cstring(l, output);
    data_buf_puts(l, "}], \"task\": ");
    data_json_cstring(l, data_task_name(task));
    data_buf_puts(l, "}\n");
    put(b, b->files[b->split].xtuner, l);

    data_buf_reset(l);
    data_buf_puts(l, "{\"messages\": [{\"role\": \"system\", \"content\": ");
    data_json_cstring(l, system);
    data_buf_puts(l, "}, {\"role\": \"user\", \"content\": ");
    data_json_cstring(l, input);
    data_buf_puts(l, "}, {\"role\": \"assistant\", \"content\": ");
    data_json_cstring(l, output);
    data_buf_puts(l, "}], \"task\": ");
    data_json_cstring(l, data_task_name(task));
    data_buf_puts(l, "}\n");
    put(b, b->files[b->split].openai, l);

    b->st->records[b->split][task]++;
    if (b->split == DATA_SPLIT_TRAIN && b->o->sample && b->samples[task] < b->o->sample_per_task) {
        b->samples[task]++;
        b->o->sample(b->o->ctx, data_task_name(task), system, input, output);
    }
}

/* A tool-use record (docs/data.md, "Tool use"): OpenAI-style messages whose roles are InternLM2's role lines, so
 * that the plugin schema, the attached tune and the plugin's result carry their names (as `melodist train` writes
 * them after <|im_start|>). The plugin system prompt stands in for the persona: both and a tune do not fit the
 * shipped model's context. */
static void emit_tool_record(void *ctx, enum data_task task, const char *file, const char *question,
                             const char *call, const char *result, const char *output)
{
    struct builder *b = ctx;
    const char *roles[] = {CHAT_ROLE_PLUGIN_SYSTEM, CHAT_ROLE_FILE, "user", "assistant",
                           CHAT_ROLE_PLUGIN_ENVIRONMENT, "assistant"};
    const char *contents[] = {abc_tools_schema(), file, question, call, result, output};
    struct data_buf *l = &b->line;
    data_buf_reset(l);
    data_buf_puts(l, "{\"messages\": [");
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        data_buf_puts(l, i ? ", {\"role\": " : "{\"role\": ");
        data_json_cstring(l, roles[i]);
        data_buf_puts(l, ", \"content\": ");
        data_json_cstring(l, contents[i]);
        data_buf_puts(l, "}");
    }
    data_buf_puts(l, "], \"task\": ");
    data_json_cstring(l, data_task_name(task));
    data_buf_puts(l, "}\n");
    put(b, b->files[b->split].tools, l);
}

static void write_document(struct builder *b, int split, const char *text, size_t len)
{
    struct data_buf *l = &b->line;
    data_buf_reset(l);
    data_buf_append(l, text, len);
    if (!len || text[len - 1] != '\n')
        data_buf_putc(l, '\n');
    data_buf_puts(l, DATA_DOC_SEPARATOR "\n");
    put(b, b->files[split].pretrain, l);
    b->st->pretrain_bytes[split] += (long)l->len;
}

/* ---- the two passes ---- */

static int has_cjk(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    for (; *u; u++)
        if (*u >= 0xE4 && *u <= 0xE9) /* lead bytes of U+4E00..U+9FFF */
            return 1;
    return 0;
}

/* Lyrics: w: lines (syllables aligned to notes); Chinese when they hold a CJK character. */
static void count_lyrics(struct builder *b, const struct tune *t)
{
    data_buf_reset(&b->line);
    if (!sft_lyrics(t, &b->line))
        return;
    b->st->lyrics_tunes++;
    b->st->lyrics_tunes_chinese += has_cjk(b->line.data);
}

static void pass1_tune(struct builder *b, struct input_item *it, int seq)
{
    b->tunes_scanned++;
    struct data_counters scratch = {0};
    repair_tune(&it->text, it->missing_x, seq, &scratch);
    free(scratch.items);
    struct tune t;
    char reason[128];
    if (tune_prepare(&t, it->text.data, it->text.len, reason, sizeof reason))
        return;
    int inserted;
    uint32_t *bits = hashmap64_upsert(&b->groups, t.melody, 0, &inserted);
    *bits |= (uint32_t)split_suggest_bit(it->suggested_split);
    tune_free(&t);
}

static void pass2_tune(struct builder *b, struct input_item *it, int seq)
{
    struct data_stats *st = b->st;
    st->tunes_read++;
    data_counters_add(&st->collections_read, it->collection, 1);
    repair_tune(&it->text, it->missing_x, seq, &st->repairs);
    struct tune t;
    char reason[128];
    if (tune_prepare(&t, it->text.data, it->text.len, reason, sizeof reason)) {
        data_counters_add(&st->drops, reason, 1);
        return;
    }
    int inserted;
    hashmap64_upsert(&b->seen_exact, t.exact, 1, &inserted);
    if (!inserted) {
        st->exact_duplicates++;
        tune_free(&t);
        return;
    }
    hashmap64_upsert(&b->seen_melody, t.melody, 1, &inserted);
    st->near_duplicates += !inserted;
    uint32_t *bits = hashmap64_get(&b->groups, t.melody);
    int split = split_assign(bits ? *bits : (uint32_t)split_suggest_bit(it->suggested_split), t.melody, b->o->seed);

    st->tunes_kept++;
    st->split_tunes[split]++;
    data_counters_add(&st->collections_kept, it->collection, 1);
    count_lyrics(b, &t);
    write_document(b, split, t.text, t.len);
    struct tune_meta meta = {it->collection, it->group, split};
    b->split = split;
    sft_tune(b->gen, &t, &meta, emit_record, b);
    tune_free(&t);
}

static void pass2_text(struct builder *b, struct input_item *it)
{
    int inserted;
    hashmap64_upsert(&b->seen_text, hash64(it->text.data, it->text.len, 1), 1, &inserted);
    if (!inserted)
        return;
    b->st->knowledge_docs++;
    write_document(b, DATA_SPLIT_TRAIN, it->text.data, it->text.len);
}

static void pass2_sft(struct builder *b, struct input_item *it)
{
    struct data_buf input = {0};
    data_buf_append(&input, it->instruction.data ? it->instruction.data : "", it->instruction.len);
    if (it->input.len) {
        if (input.len)
            data_buf_putc(&input, '\n');
        data_buf_append(&input, it->input.data, it->input.len);
    }
    uint64_t h = hash64(input.data, input.len, hash64(it->output.data, it->output.len, 2));
    int inserted;
    hashmap64_upsert(&b->seen_text, h, 1, &inserted);
    if (inserted) {
        b->st->musicpile_records++;
        b->split = split_by_hash(h, b->o->seed);
        emit_record(b, DATA_TASK_MUSICPILE, has_cjk(input.data), input.data, it->output.data);
    }
    data_buf_free(&input);
}

static void report(struct builder *b, const char *path, size_t index, int pass, int done)
{
    if (!b->o->progress)
        return;
    struct data_progress p = {path, index, b->o->n_inputs + b->o->n_knowledge, b->st->tunes_read, b->st->tunes_kept,
                              b->tunes_scanned, pass, done};
    b->o->progress(b->o->ctx, &p);
}

static int run_pass(struct builder *b, int pass, char *err, size_t errlen)
{
    size_t n_all = b->o->n_inputs + b->o->n_knowledge;
    struct input_item it = {0};
    int rc = 0;
    for (size_t i = 0; i < n_all && !rc; i++) {
        int knowledge = i >= b->o->n_inputs;
        const char *path = knowledge ? b->o->knowledge[i - b->o->n_inputs] : b->o->inputs[i];
        report(b, path, i, pass, 0);
        struct input_reader *r = input_open(path, knowledge, err, errlen);
        if (!r)
            return -1;
        int seq = 0, got;
        while ((got = input_next(r, &it, err, errlen)) == 1) {
            if (it.kind == INPUT_TUNE) {
                seq++;
                if (pass == 1)
                    pass1_tune(b, &it, seq);
                else
                    pass2_tune(b, &it, seq);
                if (seq % 512 == 0)
                    report(b, path, i, pass, 0);
            } else if (pass == 2) {
                if (it.kind == INPUT_TEXT)
                    pass2_text(b, &it);
                else
                    pass2_sft(b, &it);
            }
        }
        if (got < 0)
            rc = -1;
        else
            report(b, path, i, pass, 1);
        input_close(r);
    }
    input_item_free(&it);
    return rc;
}

static int select_self(void *ctx, unsigned index)
{
    struct builder *b = ctx;
    b->split = split_by_hash(hash64_mix(0x73656c66ull + index), b->o->seed);
    return 1;
}

int data_build(const struct data_build_options *o, struct data_stats *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    if (!o->out_dir || !o->out_dir[0]) {
        snprintf(err, errlen, "no output directory (--out DIR)");
        return -1;
    }
    if (exists(o->out_dir) && !is_previous_build(o->out_dir)) {
        struct stat sb;
        stat(o->out_dir, &sb);
        if (!S_ISDIR(sb.st_mode) || rmdir(o->out_dir)) {
            snprintf(err, errlen, "%s exists and is not a previous build (no stats.json); choose another --out or "
                     "remove it", o->out_dir);
            return -1;
        }
    }
    struct builder b = {0};
    b.o = o;
    b.st = st;
    size_t n = strlen(o->out_dir) + 8;
    b.tmp = malloc(n);
    if (!b.tmp)
        abort();
    snprintf(b.tmp, n, "%s.tmp", o->out_dir);
    b.gen = sft_gen_new(o->seed);
    sft_gen_on_tool(b.gen, emit_tool_record);

    int rc = open_outputs(&b, err, errlen);
    if (!rc)
        rc = run_pass(&b, 1, err, errlen);
    if (!rc)
        rc = run_pass(&b, 2, err, errlen);
    if (!rc)
        sft_self_cognition(select_self, emit_record, &b);
    if (close_outputs(&b) && !rc) {
        snprintf(err, errlen, "writing into %s failed: %s", b.tmp, strerror(errno));
        rc = -1;
    }
    if (!rc)
        rc = write_stats(&b, err, errlen);
    if (!rc)
        rc = publish(&b, err, errlen);
    if (rc)
        remove_build_dir(b.tmp);

    sft_gen_free(b.gen);
    hashmap64_free(&b.groups);
    hashmap64_free(&b.seen_exact);
    hashmap64_free(&b.seen_melody);
    hashmap64_free(&b.seen_text);
    data_buf_free(&b.line);
    free(b.tmp);
    return rc;
}
