/* melodist train --config FILE [--out DIR] [--resume]: train an InternLM2-architecture model. The option
 * handling, progress lines, Ctrl-C and exit codes are shared with melodist finetune (train_cli.h). */
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "melodist/train.h"
#include "train_cli.h"

static volatile int stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void format_duration(char *out, size_t cap, double s)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else
        snprintf(out, cap, "%ldm%02lds", t / 60, t % 60);
}

static void progress(void *ctx, const struct train_progress *p)
{
    (void)ctx;
    char eta[32];
    format_duration(eta, sizeof eta, p->eta_s);
    fprintf(stderr, "step %" PRId64 "/%" PRId64 "  loss %.4f  lr %.2e  grad %.3f  %.0f tok/s  ETA %s", p->step,
            p->steps, p->loss, p->lr, p->grad_norm, p->tokens_per_s, eta);
    if (!isnan(p->valid_loss))
        fprintf(stderr, "  valid %.4f", p->valid_loss);
    if (p->saved)
        fprintf(stderr, "  saved %s", p->saved);
    fputc('\n', stderr);
}

static void message(void *ctx, const char *text)
{
    fprintf(stderr, "melodist %s: %s\n", (const char *)ctx, text);
}

static const char train_usage[] =
    "usage: melodist train --config FILE [--out DIR] [--resume]\n"
    "  --config FILE  training config (JSON; see configs/tiny.json and docs/training.md)\n"
    "  --out DIR      run directory for checkpoints and train_log.jsonl (default: the config's)\n"
    "  --resume       continue from the newest checkpoint in the run directory\n"
    "Ctrl-C saves a checkpoint and stops. Data-parallel: mpirun -np N melodist train ...\n";

int cmd_train(int argc, char **argv)
{
    return cli_run_training(argc, argv, "train", train_usage, train_run);
}

int cli_run_training(int argc, char **argv, const char *name, const char *usage,
                     enum train_result (*run)(const struct train_options *o, char *err, size_t errlen))
{
    struct train_options o = {.stop = &stop_requested, .progress = progress, .message = message, .ctx = (void *)name};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            o.config_path = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            o.out_dir = argv[++i];
        else if (!strcmp(argv[i], "--resume"))
            o.resume = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "melodist %s: unexpected argument '%s'\n%s", name, argv[i], usage);
            return 2;
        }
    }
    if (!o.config_path) {
        fputs(usage, stderr);
        return 2;
    }
    dist_init(&argc, &argv);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    char err[1024] = "";
    enum train_result res = run(&o, err, sizeof err);
    if (res == TRAIN_FAILED)
        fprintf(stderr, "melodist %s: %s\n", name, err);
    else if (res == TRAIN_STOPPED && dist_rank() == 0)
        fprintf(stderr, "melodist %s: interrupted; the checkpoint above holds the state (--resume continues)\n",
                name);
    dist_finalize();
    return res == TRAIN_DONE ? 0 : res == TRAIN_STOPPED ? 130 : 1;
}
