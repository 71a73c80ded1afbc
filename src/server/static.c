/* The web page's files: index.html, app.js and the abcjs bundle from web/node_modules (npm ci in web/). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/fileio.h"
#include "server_internal.h"

int static_serve(struct conn *c, const struct http_request *r)
{
    static const struct {
        const char *url, *file, *type;
    } files[] = {
        {"/", "index.html", "text/html; charset=utf-8"},
        {"/index.html", "index.html", "text/html; charset=utf-8"},
        {"/app.js", "app.js", "text/javascript; charset=utf-8"},
        {"/abcjs.js", "node_modules/abcjs/dist/abcjs-basic-min.js", "text/javascript; charset=utf-8"},
    };
    const char *dir = c->srv->web_dir;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (strcmp(r->path, files[i].url))
            continue;
        char path[4096];
        size_t len = 0;
        char *data = NULL, why[64];
        if (dir && (size_t)snprintf(path, sizeof path, "%s/%s", dir, files[i].file) < sizeof path)
            data = file_read(path, SIZE_MAX, &len, why, sizeof why);
        if (!data) {
            http_error(c, 404, NULL, "not_found", "%s is not available: %s", r->path,
                       !dir ? "the server runs without a web directory (--web DIR)"
                       : i == 3 ? "run 'npm ci' in the web directory to install abcjs"
                                : "the web directory lacks it");
            return 1;
        }
        http_respond(c, 200, files[i].type, data, len);
        free(data);
        return 1;
    }
    return 0;
}
