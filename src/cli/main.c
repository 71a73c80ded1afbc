/* melodist: dispatch to the top-level commands. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"abc", cmd_abc, "parse, check, normalise, analyse, transpose and render ABC notation"},
    {"tokenize", cmd_tokenize, "encode text to token ids or pieces with a SentencePiece tokenizer.model"},
    {"detokenize", cmd_detokenize, "decode token ids to text"},
    {"info", cmd_info, "show an InternLM2 checkpoint's configuration, size and memory needs"},
    {"quantize", cmd_quantize, "rewrite an InternLM2 checkpoint as q8, q4, bf16, f16 or f32"},
    {"generate", cmd_generate, "continue a text prompt with an InternLM2 model"},
    {"chat", cmd_chat, "talk with an InternLM2-chat model (the Melodist composer persona by default)"},
    {"convert", cmd_convert, "export an InternLM2 checkpoint as GGUF for llama.cpp and ollama"},
    {"compose", cmd_compose, "compose a tune with the shipped Melodist model (key, meter, type, bars, chords, ...)"},
    {"continue", cmd_continue, "continue a tune by N bars with the Melodist model"},
    {"harmonize", cmd_harmonize, "add chord symbols to a melody with the Melodist model"},
    {"eval", cmd_eval, "evaluate a Melodist model on held-out tunes against an n-gram baseline"},
    {"analyze", cmd_analyze, "answer questions about a tune (computed by the ABC engine where it can)"},
    {"data", cmd_data, "build the pre-training corpus and SFT datasets from ABC collections"},
    {"train", cmd_train, "train an InternLM2-architecture model (from scratch or continued)"},
    {"finetune", cmd_finetune, "LoRA / QLoRA supervised fine-tuning of an InternLM2 checkpoint"},
    {"merge", cmd_merge, "merge a LoRA adapter into its base checkpoint"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server and web page (chat, scores rendered and played)"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: melodist COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'melodist COMMAND --help' for the options of a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "melodist: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
