/* melodist compose / continue / harmonize: one tune from the shipped Melodist model (melodist/compose.h),
 * streamed to the terminal, printed to stdout, optionally written as MIDI, WAV and an SVG score. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "abc_input.h"
#include "commands.h"
#include "compose_cli.h"
#include "melodist/abc.h"
#include "melodist/audio.h"
#include "melodist/compose.h"
#include "melodist/midi.h"
#include "melodist/nn.h"

static int is_model_dir(const char *dir)
{
    char path[PATH_MAX + 32];
    struct stat st;
    snprintf(path, sizeof path, "%s/config.json", dir);
    return stat(path, &st) == 0;
}

int compose_default_model(char *out, size_t size)
{
    const char *env = getenv("MELODIST_MODEL");
    if (env && *env) {
        snprintf(out, size, "%s", env);
        return 0;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = 0;
        static const char *const rel[] = {"/../models/melodist-mini", "/models/melodist-mini",
                                          "/../share/melodist/models/melodist-mini"};
        for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
            snprintf(out, size, "%s%s", exe, rel[i]);
            if (is_model_dir(out))
                return 0;
        }
    }
    snprintf(out, size, "models/melodist-mini");
    return is_model_dir(out) ? 0 : -1;
}

int compose_load(const char *command, const char *dir, struct compose_model *cm)
{
    char path[PATH_MAX + 32], err[1024];
    memset(cm, 0, sizeof *cm);
    if (!dir) {
        if (compose_default_model(cm->dir, sizeof cm->dir)) {
            fprintf(stderr, "melodist %s: the shipped model models/melodist-mini was not found next to the program "
                            "or in the current directory (give -m DIR or set MELODIST_MODEL)\n", command);
            return -1;
        }
    } else {
        snprintf(cm->dir, sizeof cm->dir, "%s", dir);
    }
    snprintf(path, sizeof path, "%s/tokenizer.model", cm->dir);
    cm->tok = tok_load(path, err, sizeof err);
    if (!cm->tok) {
        fprintf(stderr, "melodist %s: cannot load the tokenizer of %s: %s\n", command, cm->dir, err);
        return -1;
    }
    if (model_load(cm->dir, &cm->model, err, sizeof err)) {
        fprintf(stderr, "melodist %s: cannot load the model %s: %s\n", command, cm->dir, err);
        compose_unload(cm);
        return -1;
    }
    cm->composer = composer_new(cm->model, cm->tok, err, sizeof err);
    if (!cm->composer) {
        fprintf(stderr, "melodist %s: %s: %s\n", command, cm->dir, err);
        compose_unload(cm);
        return -1;
    }
    return 0;
}

void compose_unload(struct compose_model *cm)
{
    composer_free(cm->composer);
    model_free(cm->model);
    tok_free(cm->tok);
    memset(cm, 0, sizeof *cm);
}

/* ---------------------------------------------------------------- streaming to a terminal */

struct screen {
    struct sbuf_lite {
        char *s;
        size_t len, cap;
    } shown;
};

/* Text arrives as it is composed; a rejected bar is taken back by moving the cursor up to the line where the
 * kept text ends, reprinting that line's start and clearing below. */
static int on_text(void *ctx, const char *text, size_t len, size_t rewind)
{
    struct screen *sc = ctx;
    struct sbuf_lite *b = &sc->shown;
    if (rewind) {
        size_t keep = b->len - rewind, lines = 0;
        for (size_t i = keep; i < b->len; i++)
            lines += b->s[i] == '\n';
        size_t line_start = keep;
        while (line_start && b->s[line_start - 1] != '\n')
            line_start--;
        if (lines)
            printf("\033[%zuA", lines);
        printf("\r%.*s\033[J", (int)(keep - line_start), b->s + line_start);
        b->len = keep;
    }
    if (b->len + len + 1 > b->cap) {
        size_t cap = (b->len + len + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s)
            return 1;
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->len, text, len);
    b->len += len;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

/* ---------------------------------------------------------------- outputs */

static int write_midi_wav(const char *command, const char *abc, const char *midi_path, const char *wav_path)
{
    char err[512];
    abc_file *f = abc_parse(abc, strlen(abc));
    abc_model *m = f && f->n_tunes ? abc_model_new(f, 0, NULL) : NULL;
    midi_file *mf = NULL;
    unsigned char *bytes = NULL;
    size_t len = 0;
    int rc = 1;
    struct midi_options mo = {.chords = true};
    if (!m || midi_from_model(f, 0, m, &mo, &mf, err, sizeof err) || midi_file_bytes(mf, &bytes, &len)) {
        fprintf(stderr, "melodist %s: cannot render the tune to MIDI%s%s\n", command, m ? ": " : "", m ? err : "");
        goto done;
    }
    if (midi_path && !abc_write_atomic(command, midi_path, (const char *)bytes, len))
        goto done;
    if (wav_path) {
        struct audio_options ao = {0};
        if (audio_render_midi(bytes, len, wav_path, &ao, NULL, err, sizeof err)) {
            fprintf(stderr, "melodist %s: cannot write %s: %s\n", command, wav_path, err);
            goto done;
        }
    }
    rc = 0;
done:
    free(bytes);
    midi_file_free(mf);
    abc_model_free(m);
    abc_file_free(f);
    return rc;
}

/* The score as SVG through abcm2ps -g (one page), renamed into place when complete. */
static int write_svg(const char *command, const char *abc, const char *svg_path)
{
    char dir[] = "/tmp/melodist-svg.XXXXXX";
    if (!mkdtemp(dir)) {
        fprintf(stderr, "melodist %s: cannot make a temporary directory for abcm2ps\n", command);
        return 1;
    }
    char in[PATH_MAX], out[PATH_MAX], page[PATH_MAX];
    snprintf(in, sizeof in, "%s/tune.abc", dir);
    snprintf(out, sizeof out, "%s/tune.svg", dir);
    snprintf(page, sizeof page, "%s/tune001.svg", dir);
    int rc = 1;
    FILE *fp = fopen(in, "w");
    if (fp) {
        fputs(abc, fp);
        fclose(fp);
        pid_t pid = fork();
        if (pid == 0) {
            int devnull = open("/dev/null", O_WRONLY);
            if (devnull >= 0) {
                dup2(devnull, 1);
                dup2(devnull, 2);
            }
            execlp("abcm2ps", "abcm2ps", "-q", "-g", "-O", out, in, (char *)NULL);
            _exit(127);
        }
        int status = 0;
        if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 127)
            fprintf(stderr, "melodist %s: --svg needs abcm2ps (apt-get install abcm2ps)\n", command);
        else if (access(page, R_OK))
            fprintf(stderr, "melodist %s: abcm2ps could not draw the score\n", command);
        else if (rename(page, svg_path)) {
            /* another filesystem: copy through a temporary file beside the target */
            FILE *src = fopen(page, "rb");
            char *data = NULL;
            size_t len = 0;
            if (src) {
                FILE *mem = open_memstream(&data, &len);
                int ch;
                while (mem && (ch = fgetc(src)) != EOF)
                    fputc(ch, mem);
                if (mem)
                    fclose(mem);
                fclose(src);
            }
            rc = data && abc_write_atomic(command, svg_path, data, len) ? 0 : 1;
            free(data);
        } else {
            rc = 0;
        }
    }
    unlink(in);
    unlink(page);
    rmdir(dir);
    return rc;
}

int compose_outputs(const char *command, const char *abc, const struct compose_outputs *o)
{
    int rc = 0;
    if (o->abc_path && !abc_write_atomic(command, o->abc_path, abc, strlen(abc)))
        rc = 1;
    if ((o->midi_path || o->wav_path) && write_midi_wav(command, abc, o->midi_path, o->wav_path))
        rc = 1;
    if (o->svg_path && write_svg(command, abc, o->svg_path))
        rc = 1;
    return rc;
}

/* ---------------------------------------------------------------- the commands */

static const char *const compose_help =
    "usage: melodist compose [options] [FREE TEXT...]\n"
    "Composes one tune with the Melodist model and prints it (ABC) to stdout.\n"
    "  --key K           key, as in K: (D, Am, Bb, F#m, Edor, Gmix)\n"
    "  --meter M         meter (6/8, 4/4, 3/4); default: the type's (jig 6/8, reel 4/4, waltz 3/4, polka 2/4, ...)\n"
    "  --type T          rhythm type: jig, slip jig, slide, reel, hornpipe, strathspey, schottische, waltz,\n"
    "                    mazurka, minuet, polka, march, air (written as R:)\n"
    "  --bars N          bars of music\n"
    "  --mood WORDS      character, e.g. \"欢快、明亮\" or \"cheerful\"\n"
    "  --chords \"...\"    one chord per bar (\"G D Em C\") or cells (\"G D | Em | C D\"); its first chord opens each bar\n"
    "  --motif \"ABC\"     a melodic motif (L:1/8) that opens the tune\n"
    "  --form AABB       section letters (8 bars each unless --bars is given)\n"
    "  --like FILE       a reference tune: same meter, key and rhythm type\n"
    "  --lyrics TEXT     words to set (given to the model; their alignment is not checked)\n"
    "  --title T         T: line (default: the model's)\n"
    "  FREE TEXT         a request in words (\"一首欢快的D大调吉格\", \"a reel in G, 16 bars\"); a key, meter, type\n"
    "                    and bar count named in it are kept like the options above\n"
    "  --seed N, --temperature T (0.8), --top-p P (0.95)   sampling\n"
    "  -m DIR            model (default: models/melodist-mini, the shipped model)\n"
    "  -o FILE.abc, --midi FILE.mid, --wav FILE.wav, --svg FILE.svg   also write these (atomically)\n"
    "  --threads N       worker threads\n"
    "What is computed and what is generated: the notes, the title and the header fields you leave open are the\n"
    "model's. Key, meter, type, bar count, chords and motif are enforced while decoding (the header is written\n"
    "from them, chords and motif are placed at bar starts), and every bar is checked by the ABC validator as it is\n"
    "written: a bar that does not fit the meter is sampled again (reported on stderr).\n"
    "Exit status: 0 valid tune, 1 no valid tune (the best attempt is still printed) or bad input, 2 usage.\n";

static const char *const continue_help =
    "usage: melodist continue FILE --bars N [options]\n"
    "Continues the first tune of FILE (its header and bars are kept exactly) by N more bars with the model.\n"
    "  --bars N          bars to add (default: until the model ends the tune)\n"
    "  --seed N, --temperature T, --top-p P, -m DIR, -o FILE, --midi FILE, --wav FILE, --svg FILE, --threads N\n"
    "    as in 'melodist compose'\n";

static const char *const harmonize_help =
    "usage: melodist harmonize FILE [options]\n"
    "Keeps the melody of the first tune of FILE note for note and lets the model write a chord symbol at the start\n"
    "of every bar (chord symbols already there are replaced). Every chord is checked to be a readable chord.\n"
    "  --seed N, --temperature T, --top-p P, -m DIR, -o FILE, --midi FILE, --wav FILE, --svg FILE, --threads N\n"
    "    as in 'melodist compose'\n";

static int number(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

char *compose_read_text(const char *command, const char *path, size_t *len_out)
{
    size_t len;
    char *raw = abc_input_read(command, path, &len);
    char *text = raw ? strndup(raw, len) : NULL;
    if (raw && !text)
        fprintf(stderr, "melodist %s: out of memory reading %s\n", command, path);
    free(raw);
    if (text && len_out)
        *len_out = strlen(text);
    return text;
}

static int run(const char *command, enum compose_task task, int argc, char **argv)
{
    struct compose_request req;
    compose_request_default(&req);
    req.task = task;
    struct compose_outputs out = {0};
    const char *model_dir = NULL, *like_path = NULL, *input_path = NULL;
    const char *help = task == COMPOSE_NEW ? compose_help : task == COMPOSE_CONTINUE ? continue_help : harmonize_help;
    char *text = NULL, *like = NULL, *prefix = NULL;
    size_t text_len = 0;
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(help, stdout);
            rc = 0;
            goto done;
        }
        if (a[0] != '-' || !a[1]) {
            if (task != COMPOSE_NEW) {
                if (input_path) {
                    fprintf(stderr, "melodist %s: one input file only ('%s' and '%s')\n", command, input_path, a);
                    goto done;
                }
                input_path = a;
                continue;
            }
            size_t n = strlen(a);
            char *t = realloc(text, text_len + n + 2);
            if (!t)
                goto oom;
            text = t;
            if (text_len)
                text[text_len++] = ' ';
            memcpy(text + text_len, a, n + 1);
            text_len += n;
            continue;
        }
        const char *v = i + 1 < argc ? argv[++i] : NULL;
        double x;
        if (!v) {
            fprintf(stderr, "melodist %s: %s needs a value\n%s", command, a, help);
            goto done;
        }
        int ok = 1, everywhere = 1;
        if (!strcmp(a, "-m"))
            model_dir = v;
        else if (!strcmp(a, "--seed") && !number(v, 0, 1.8e19, &x))
            req.seed = (uint64_t)x;
        else if (!strcmp(a, "--temperature") && !number(v, 0, 10, &x))
            req.temperature = (float)x;
        else if (!strcmp(a, "--top-p") && !number(v, 0.01, 1, &x))
            req.top_p = (float)x;
        else if (!strcmp(a, "--threads") && !number(v, 1, 1024, &x))
            nn_set_threads((int)x);
        else if (!strcmp(a, "-o"))
            out.abc_path = v;
        else if (!strcmp(a, "--midi"))
            out.midi_path = v;
        else if (!strcmp(a, "--wav"))
            out.wav_path = v;
        else if (!strcmp(a, "--svg"))
            out.svg_path = v;
        else if (!strcmp(a, "--bars") && task != COMPOSE_HARMONIZE && !number(v, 1, 256, &x))
            req.bars = (int)x;
        else
            everywhere = 0;
        if (!everywhere && task == COMPOSE_NEW) {
            if (!strcmp(a, "--key"))
                req.key = v;
            else if (!strcmp(a, "--meter"))
                req.meter = v;
            else if (!strcmp(a, "--type"))
                req.type = v;
            else if (!strcmp(a, "--mood"))
                req.mood = v;
            else if (!strcmp(a, "--chords"))
                req.chords = v;
            else if (!strcmp(a, "--motif"))
                req.motif = v;
            else if (!strcmp(a, "--form"))
                req.form = v;
            else if (!strcmp(a, "--like"))
                like_path = v;
            else if (!strcmp(a, "--lyrics"))
                req.lyrics = v;
            else if (!strcmp(a, "--title"))
                req.title = v;
            else
                ok = 0;
        } else if (!everywhere) {
            ok = 0;
        }
        if (!ok) {
            fprintf(stderr, "melodist %s: unknown option or bad value: %s %s\n(see melodist %s --help)\n", command, a,
                    v, command);
            goto done;
        }
    }
    rc = 1;
    req.text = text;
    if (like_path && !(like = compose_read_text(command, like_path, NULL)))
        goto done;
    req.like = like;
    if (task != COMPOSE_NEW) {
        if (!input_path) {
            fprintf(stderr, "melodist %s: give the ABC file of the tune (see melodist %s --help)\n", command, command);
            rc = 2;
            goto done;
        }
        if (!(prefix = compose_read_text(command, input_path, NULL)))
            goto done;
        req.prefix = prefix;
    }
    char err[1024];
    char *instr = compose_instruction(&req, err, sizeof err);
    if (!instr) {
        fprintf(stderr, "melodist %s: %s\n", command, err);
        goto done;
    }
    free(instr);
    struct compose_model cm;
    if (compose_load(command, model_dir, &cm))
        goto done;
    struct screen sc = {{0}};
    int tty = isatty(1);
    struct compose_result res;
    if (compose(cm.composer, &req, tty ? on_text : NULL, &sc, &res, err, sizeof err)) {
        fprintf(stderr, "%smelodist %s: %s\n", tty ? "\n" : "", command, err);
        free(sc.shown.s);
        compose_unload(&cm);
        goto done;
    }
    free(sc.shown.s);
    if (!tty)
        fputs(res.abc, stdout);
    fflush(stdout);
    if (res.bars_resampled || res.tunes_resampled)
        fprintf(stderr, "melodist %s: re-sampled %d bar(s) that broke the meter or the syntax or would "
                        "have been a third bar in a row with the same music, and %d whole tune(s)\n",
                command, res.bars_resampled, res.tunes_resampled);
    if (res.bars_repaired)
        fprintf(stderr, "melodist %s: %d bar(s) had no fitting sample and were written by the composer (the motif "
                        "completed by the tonic, the previous bar repeated, or the tonic held)\n",
                command, res.bars_repaired);
    if (res.truncated)
        fprintf(stderr, "melodist %s: ended early after %d bars (no fitting bar after repeated tries, or the "
                        "token limit)\n", command, res.bars);
    rc = 0;
    if (!res.valid) {
        fprintf(stderr, "melodist %s: the tune is still not valid ABC after %d attempts "
                        "(run 'melodist abc check' on it for details; try another --seed)\n", command,
                res.tunes_resampled + 1);
        rc = 1;
    }
    if (compose_outputs(command, res.abc, &out))
        rc = 1;
    compose_result_free(&res);
    compose_unload(&cm);
    goto done;
oom:
    fprintf(stderr, "melodist %s: out of memory\n", command);
    rc = 1;
done:
    free(text);
    free(like);
    free(prefix);
    return rc;
}

int cmd_compose(int argc, char **argv) { return run("compose", COMPOSE_NEW, argc, argv); }
int cmd_continue(int argc, char **argv) { return run("continue", COMPOSE_CONTINUE, argc, argv); }
int cmd_harmonize(int argc, char **argv) { return run("harmonize", COMPOSE_HARMONIZE, argc, argv); }
