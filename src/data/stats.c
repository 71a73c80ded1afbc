/* Counters, task and split names, and stats.json. */
#include <stdlib.h>
#include <string.h>

#include "melodist/data.h"
#include "melodist/data_json.h"

static const char *const task_names[DATA_TASK_COUNT] = {
    [DATA_TASK_CONTINUATION] = "continuation",
    [DATA_TASK_COMPOSE_MOOD] = "compose_mood",
    [DATA_TASK_COMPOSE_MOTIF] = "compose_motif",
    [DATA_TASK_COMPOSE_CHORDS] = "compose_chords",
    [DATA_TASK_COMPOSE_FORM] = "compose_form",
    [DATA_TASK_COMPOSE_REFERENCE] = "compose_reference",
    [DATA_TASK_COMPOSE_STYLE] = "compose_style",
    [DATA_TASK_LYRICS] = "lyrics",
    [DATA_TASK_FIND_MELODY] = "analysis_find_melody",
    [DATA_TASK_FIND_CHORD] = "analysis_find_chord",
    [DATA_TASK_COUNT_BARS] = "analysis_count",
    [DATA_TASK_PROGRESSION] = "analysis_progression",
    [DATA_TASK_HARMONISE] = "harmonise",
    [DATA_TASK_MELODISE] = "melodise",
    [DATA_TASK_GENRE] = "genre",
    [DATA_TASK_KEY_MODE] = "key_mode",
    [DATA_TASK_SELF_COGNITION] = "self_cognition",
    [DATA_TASK_MUSICPILE] = "musicpile",
};

const char *data_task_name(enum data_task t) { return (unsigned)t < DATA_TASK_COUNT ? task_names[t] : "?"; }

const char *data_split_name(enum data_split s)
{
    static const char *const names[DATA_SPLIT_COUNT] = {"train", "valid", "test"};
    return (unsigned)s < DATA_SPLIT_COUNT ? names[s] : "?";
}

void data_counters_add(struct data_counters *c, const char *name, long delta)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strncmp(c->items[i].name, name, sizeof c->items[i].name - 1)) {
            c->items[i].count += delta;
            return;
        }
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->items = realloc(c->items, c->cap * sizeof *c->items);
        if (!c->items)
            abort();
    }
    struct data_counter *it = &c->items[c->n++];
    memset(it->name, 0, sizeof it->name);
    strncpy(it->name, name, sizeof it->name - 1);
    it->count = delta;
}

long data_counters_get(const struct data_counters *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strncmp(c->items[i].name, name, sizeof c->items[i].name - 1))
            return c->items[i].count;
    return 0;
}

void data_stats_free(struct data_stats *s)
{
    free(s->drops.items);
    free(s->repairs.items);
    free(s->collections_read.items);
    free(s->collections_kept.items);
    memset(s, 0, sizeof *s);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct data_counter *)a)->name, ((const struct data_counter *)b)->name);
}

/* Counters sorted by name, so that stats.json does not depend on the order things were met in. */
static void put_counters(struct data_buf *b, const char *key, const struct data_counters *c)
{
    struct data_counter *sorted = malloc((c->n ? c->n : 1) * sizeof *sorted);
    if (!sorted)
        abort();
    if (c->n)
        memcpy(sorted, c->items, c->n * sizeof *sorted);
    qsort(sorted, c->n, sizeof *sorted, by_name);
    data_buf_printf(b, "  \"%s\": {", key);
    for (size_t i = 0; i < c->n; i++) {
        data_buf_puts(b, i ? ", " : "");
        data_json_cstring(b, sorted[i].name);
        data_buf_printf(b, ": %ld", sorted[i].count);
    }
    data_buf_puts(b, "}");
    free(sorted);
}

char *data_stats_json(const struct data_stats *s)
{
    struct data_buf b = {0};
    long drops = 0;
    for (size_t i = 0; i < s->drops.n; i++)
        drops += s->drops.items[i].count;
    data_buf_printf(&b, "{\n  \"tunes_read\": %ld,\n  \"tunes_kept\": %ld,\n  \"tunes_dropped_invalid\": %ld,\n"
                    "  \"exact_duplicates\": %ld,\n  \"near_duplicates\": %ld,\n  \"knowledge_docs\": %ld,\n"
                    "  \"musicpile_records\": %ld,\n  \"lyrics_tunes\": %ld,\n  \"lyrics_tunes_chinese\": %ld,\n",
                    s->tunes_read, s->tunes_kept, drops, s->exact_duplicates, s->near_duplicates, s->knowledge_docs,
                    s->musicpile_records, s->lyrics_tunes, s->lyrics_tunes_chinese);
    put_counters(&b, "drops", &s->drops);
    data_buf_puts(&b, ",\n");
    put_counters(&b, "repairs", &s->repairs);
    data_buf_puts(&b, ",\n");
    put_counters(&b, "collections_read", &s->collections_read);
    data_buf_puts(&b, ",\n");
    put_counters(&b, "collections_kept", &s->collections_kept);
    data_buf_puts(&b, ",\n  \"splits\": {");
    for (int sp = 0; sp < DATA_SPLIT_COUNT; sp++) {
        long total = 0;
        for (int t = 0; t < DATA_TASK_COUNT; t++)
            total += s->records[sp][t];
        data_buf_printf(&b, "%s\n    \"%s\": {\"tunes\": %ld, \"pretrain_bytes\": %ld, \"sft_records\": %ld, "
                        "\"tasks\": {", sp ? "," : "", data_split_name(sp), s->split_tunes[sp], s->pretrain_bytes[sp],
                        total);
        for (int t = 0; t < DATA_TASK_COUNT; t++)
            data_buf_printf(&b, "%s\"%s\": %ld", t ? ", " : "", data_task_name(t), s->records[sp][t]);
        data_buf_puts(&b, "}}");
    }
    data_buf_puts(&b, "\n  }\n}\n");
    return b.data;
}
