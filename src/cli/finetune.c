/* melodist finetune --config FILE [--out DIR] [--resume]: LoRA / QLoRA supervised fine-tuning;
 * melodist merge -m BASE --adapter DIR --out MERGED: the base with a PEFT adapter merged in. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "melodist/finetune.h"
#include "train_cli.h"

static const char finetune_usage[] =
    "usage: melodist finetune --config FILE [--out DIR] [--resume]\n"
    "  --config FILE  fine-tuning config (JSON, xtuner-like fields; see configs/tiny-qlora.json, docs/finetune.md)\n"
    "  --out DIR      run directory (default: the config's work_dir); the adapter lands in DIR/adapter/\n"
    "  --resume       continue from the newest checkpoint in the run directory\n"
    "Ctrl-C saves a checkpoint and stops. Data-parallel: mpirun -np N melodist finetune ...\n";

int cmd_finetune(int argc, char **argv)
{
    return cli_run_training(argc, argv, "finetune", finetune_usage, finetune_run);
}

static const char merge_usage[] =
    "usage: melodist merge -m BASE --adapter DIR --out MERGED [--dtype f32|bf16|f16]\n"
    "  Writes BASE with the PEFT LoRA adapter in DIR merged (W + alpha/r B A) as an HF checkpoint (default f32),\n"
    "  with BASE's tokenizer.model and generation_config.json beside it.\n";

static void copy_beside(const char *from_dir, const char *to_dir, const char *name)
{
    char a[4200], b[4200], buf[65536];
    snprintf(a, sizeof a, "%s/%s", from_dir, name);
    snprintf(b, sizeof b, "%s/%s", to_dir, name);
    FILE *in = fopen(a, "rb"), *out = in ? fopen(b, "wb") : NULL;
    size_t n;
    while (out && (n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, out);
    if (out && fclose(out))
        fprintf(stderr, "melodist merge: warning: could not write %s\n", b);
    if (in)
        fclose(in);
}

int cli_merge_adapter(struct model *m, const char *dir, void **owned, char *err, size_t errlen)
{
    struct lora *L = lora_load(dir, m, err, errlen);
    int rc = L ? lora_merge(L, m, owned, err, errlen) : -1;
    lora_free(L);
    return rc;
}

int cmd_merge(int argc, char **argv)
{
    const char *base = NULL, *adapter = NULL, *out = NULL, *dtype = "f32";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(merge_usage, stdout);
            return 0;
        } else if (v && !strcmp(a, "-m"))
            base = v, i++;
        else if (v && !strcmp(a, "--adapter"))
            adapter = v, i++;
        else if (v && !strcmp(a, "--out"))
            out = v, i++;
        else if (v && !strcmp(a, "--dtype"))
            dtype = v, i++;
        else {
            fprintf(stderr, "melodist merge: unexpected argument '%s'\n%s", a, merge_usage);
            return 2;
        }
    }
    enum nn_dtype dt = !strcmp(dtype, "f32") ? NN_F32 : !strcmp(dtype, "bf16") ? NN_BF16 : NN_F16;
    if (!base || !adapter || !out || (dt == NN_F16 && strcmp(dtype, "f16"))) {
        fputs(merge_usage, stderr);
        return 2;
    }
    char err[1024];
    struct model *m = NULL;
    void *owned = NULL;
    int rc = 1;
    if (model_load(base, &m, err, sizeof err) || cli_merge_adapter(m, adapter, &owned, err, sizeof err))
        goto done;
    if (mkdir(out, 0755) && errno != EEXIST) {
        snprintf(err, sizeof err, "%s: %s", out, strerror(errno));
        goto done;
    }
    if (model_save(m, out, dt, err, sizeof err))
        goto done;
    copy_beside(base, out, "tokenizer.model");
    copy_beside(base, out, "generation_config.json");
    fprintf(stderr, "melodist merge: %s + %s -> %s (%s)\n", base, adapter, out, dtype);
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "melodist merge: %s\n", err);
    model_free(m);
    free(owned);
    return rc;
}
