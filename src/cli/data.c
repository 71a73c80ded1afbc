/* melodist data build: the data pipeline on the command line (docs/data.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "melodist/data.h"
#include "melodist/tokenizer.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: melodist data build --out DIR INPUT... [--seed N] [--sample] [--knowledge FILE]...\n"
            "       melodist data shard --tokenizer MODEL --out FILE [--dtype uint16|uint32] PRETRAIN.txt...\n"
            "\n"
            "Builds the pre-training corpus and the SFT task datasets from ABC collections (.abc, with index.tsv\n"
            "beside them), IrishMAN or MusicPile JSONL (.jsonl/.json) and knowledge texts (.txt/.md).\n"
            "  --out DIR         output directory (replaced atomically; see docs/data.md for its files)\n"
            "  --seed N          seed of the split and task choices (default 1)\n"
            "  --sample          print two examples of every task family\n"
            "  --knowledge FILE  a knowledge text whatever its extension (repeatable)\n"
            "shard: tokenises pretrain.txt documents (<s> text </s> each) into a memory-mappable token shard\n"
            "(include/melodist/shard.h); --dtype defaults to uint16 when the vocabulary fits, else uint32.\n"
            "exit status: 0 ok, 1 invalid input, 2 usage error\n");
}

struct cli {
    int tty;
};

static void progress(void *ctx, const struct data_progress *p)
{
    struct cli *c = ctx;
    const char *name = strrchr(p->path, '/');
    name = name ? name + 1 : p->path;
    if (!c->tty) {
        if (!p->input_done)
            return; /* plain output: one line per input and pass, when it is read */
        if (p->pass == 1)
            fprintf(stderr, "data: pass 1/2: %s (%zu/%zu), tunes scanned %ld\n", name, p->input_index + 1,
                    p->n_inputs, p->tunes_scanned);
        else
            fprintf(stderr, "data: pass 2/2: %s (%zu/%zu), tunes read %ld, kept %ld\n", name, p->input_index + 1,
                    p->n_inputs, p->tunes_read, p->tunes_kept);
        return;
    }
    int width = 30;
    double done = ((p->pass - 1) * (double)p->n_inputs + (double)p->input_index) / (2.0 * (double)p->n_inputs);
    int fill = (int)(done * width);
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    if (p->pass == 1)
        fprintf(stderr, "\r[%s] pass 1/2 %-24.24s scanned %ld ", bar, name, p->tunes_scanned);
    else
        fprintf(stderr, "\r[%s] pass 2/2 %-24.24s read %ld kept %ld ", bar, name, p->tunes_read, p->tunes_kept);
}

static void sample(void *ctx, const char *task, const char *system, const char *input, const char *output)
{
    (void)ctx;
    (void)system;
    printf("=== %s ===\n--- user ---\n%s\n--- assistant ---\n%s\n\n", task, input, output);
}

static void summary(const struct data_stats *s, const char *out)
{
    fprintf(stderr, "\n%-22s %9s %9s %9s\n", "", "train", "valid", "test");
    fprintf(stderr, "%-22s %9ld %9ld %9ld\n", "tunes", s->split_tunes[0], s->split_tunes[1], s->split_tunes[2]);
    for (int t = 0; t < DATA_TASK_COUNT; t++)
        fprintf(stderr, "%-22s %9ld %9ld %9ld\n", data_task_name(t), s->records[0][t], s->records[1][t],
                s->records[2][t]);
    fprintf(stderr, "\ntunes read %ld, kept %ld, exact duplicates %ld, near duplicates %ld (kept, same split)\n",
            s->tunes_read, s->tunes_kept, s->exact_duplicates, s->near_duplicates);
    fprintf(stderr, "knowledge documents %ld, MusicPile records %ld, tunes with lyrics %ld (Chinese %ld)\n",
            s->knowledge_docs, s->musicpile_records, s->lyrics_tunes, s->lyrics_tunes_chinese);
    for (size_t i = 0; i < s->drops.n; i++)
        fprintf(stderr, "dropped: %-40s %ld\n", s->drops.items[i].name, s->drops.items[i].count);
    for (size_t i = 0; i < s->repairs.n; i++)
        fprintf(stderr, "repaired: %-39s %ld\n", s->repairs.items[i].name, s->repairs.items[i].count);
    fprintf(stderr, "written to %s/ (stats.json has all counts)\n", out);
}

static int cmd_build(int argc, char **argv)
{
    const char *out = NULL;
    unsigned long long seed = 1;
    int want_sample = 0;
    const char **inputs = calloc((size_t)argc, sizeof *inputs);
    const char **knowledge = calloc((size_t)argc, sizeof *knowledge);
    size_t n_inputs = 0, n_knowledge = 0;
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            goto done;
        } else if ((!strcmp(a, "--out") || !strcmp(a, "-o")) && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(a, "--seed") && i + 1 < argc) {
            char *end;
            errno = 0;
            seed = strtoull(argv[++i], &end, 10);
            if (errno || *end || !*argv[i]) {
                fprintf(stderr, "melodist data build: --seed wants a non-negative integer, got '%s'\n", argv[i]);
                rc = 2;
                goto done;
            }
        } else if (!strcmp(a, "--sample")) {
            want_sample = 1;
        } else if (!strcmp(a, "--knowledge") && i + 1 < argc) {
            knowledge[n_knowledge++] = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "melodist data build: unknown option or missing value: %s\n\n", a);
            usage(stderr);
            rc = 2;
            goto done;
        } else {
            inputs[n_inputs++] = a;
        }
    }
    if (!out || (!n_inputs && !n_knowledge)) {
        fprintf(stderr, "melodist data build: need --out DIR and at least one input\n\n");
        usage(stderr);
        rc = 2;
        goto done;
    }
    struct cli c = {isatty(2)};
    struct data_build_options o = {0};
    o.out_dir = out;
    o.inputs = inputs;
    o.n_inputs = n_inputs;
    o.knowledge = knowledge;
    o.n_knowledge = n_knowledge;
    o.seed = seed;
    o.progress = progress;
    o.sample_per_task = want_sample ? 2 : 0;
    o.sample = sample;
    o.ctx = &c;
    struct data_stats st;
    char err[1024];
    if (data_build(&o, &st, err, sizeof err)) {
        fprintf(stderr, "%smelodist data build: %s\n", c.tty ? "\n" : "", err);
        rc = 1;
    } else {
        summary(&st, out);
    }
    data_stats_free(&st);
done:
    free(inputs);
    free(knowledge);
    return rc;
}

static int cmd_shard(int argc, char **argv)
{
    const char *model = NULL, *out = NULL;
    int dtype = 0;
    const char **inputs = calloc((size_t)argc, sizeof *inputs);
    size_t n = 0;
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) {
            model = argv[++i];
        } else if ((!strcmp(argv[i], "--out") || !strcmp(argv[i], "-o")) && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(argv[i], "--dtype") && i + 1 < argc) {
            i++;
            dtype = !strcmp(argv[i], "uint16") ? 2 : !strcmp(argv[i], "uint32") ? 4 : -1;
            if (dtype < 0) {
                fprintf(stderr, "melodist data shard: --dtype is uint16 or uint32, not '%s'\n", argv[i]);
                rc = 2;
                goto done;
            }
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "melodist data shard: unknown option or missing value: %s\n\n", argv[i]);
            usage(stderr);
            rc = 2;
            goto done;
        } else {
            inputs[n++] = argv[i];
        }
    }
    if (!model || !out || !n) {
        fprintf(stderr, "melodist data shard: need --tokenizer MODEL, --out FILE and a pretrain.txt\n\n");
        usage(stderr);
        rc = 2;
        goto done;
    }
    char err[1024];
    mt_tokenizer *tok = tok_load(model, err, sizeof err);
    if (!tok) {
        fprintf(stderr, "melodist data shard: %s\n", err);
        rc = 1;
        goto done;
    }
    struct data_shard_result res;
    if (data_shard_text(tok, inputs, n, out, dtype, &res, err, sizeof err)) {
        fprintf(stderr, "melodist data shard: %s\n", err);
        rc = 1;
    } else {
        fprintf(stderr, "%s: %ld documents, %ld tokens\n", out, res.docs, res.tokens);
    }
    tok_free(tok);
done:
    free(inputs);
    return rc;
}

int cmd_data(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "build"))
        return cmd_build(argc - 1, argv + 1);
    if (!strcmp(argv[1], "shard"))
        return cmd_shard(argc - 1, argv + 1);
    fprintf(stderr, "melodist data: unknown subcommand '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
