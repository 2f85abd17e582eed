/*
 * sys_eval / sys_exec for the tests: the two functions SWAMP takes from
 * lib_mysqludf_sys, with the same behaviour (reference/swamp-db-deploy.md
 * section 1.0), written for these tests and built against Debian's MariaDB
 * client headers (libmariadb-dev).
 *
 *   sys_eval(cmd) -> STRING: cmd runs through /bin/sh -c (popen) as the server's
 *       OS user, with the server's environment and working directory; the result
 *       is its stdout verbatim, trailing newline included, NULL when empty.  The
 *       server thread waits until the command's stdout reaches EOF.
 *   sys_exec(cmd) -> INT: the raw wait status of system(cmd).
 *
 * Never install this on a server that untrusted users can reach: any SQL user
 * can run any command as the server's OS user with it, exactly as with
 * lib_mysqludf_sys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mysql.h>

static char *command_of(UDF_ARGS *args)
{
    char *cmd = malloc(args->lengths[0] + 1);
    if (cmd == NULL)
        return NULL;
    memcpy(cmd, args->args[0], args->lengths[0]);
    cmd[args->lengths[0]] = '\0';
    return cmd;
}

static my_bool one_string_arg(UDF_ARGS *args, char *message, const char *name)
{
    if (args->arg_count != 1 || args->arg_type[0] != STRING_RESULT) {
        snprintf(message, MYSQL_ERRMSG_SIZE, "%s(command) takes one string argument", name);
        return 1;
    }
    return 0;
}

my_bool sys_eval_init(UDF_INIT *initid, UDF_ARGS *args, char *message)
{
    if (one_string_arg(args, message, "sys_eval"))
        return 1;
    initid->maybe_null = 1;
    initid->ptr = NULL;
    return 0;
}

void sys_eval_deinit(UDF_INIT *initid)
{
    free(initid->ptr);
    initid->ptr = NULL;
}

char *sys_eval(UDF_INIT *initid, UDF_ARGS *args, char *result, unsigned long *length,
               char *is_null, char *error)
{
    char *cmd, *out = NULL;
    size_t used = 0, size = 0, n;
    FILE *pipe;
    (void)result;

    free(initid->ptr);
    initid->ptr = NULL;
    if (args->args[0] == NULL) {
        *is_null = 1;
        return NULL;
    }
    cmd = command_of(args);
    if (cmd == NULL) {
        *error = 1;
        return NULL;
    }
    pipe = popen(cmd, "r");
    free(cmd);
    if (pipe == NULL) {
        *is_null = 1;
        return NULL;
    }
    for (;;) {
        if (size - used < 4096) {
            char *bigger = realloc(out, size + 65536);
            if (bigger == NULL)
                break;
            out = bigger;
            size += 65536;
        }
        n = fread(out + used, 1, size - used, pipe);
        if (n == 0)
            break;
        used += n;
    }
    pclose(pipe);
    if (used == 0) {
        free(out);
        *is_null = 1;
        return NULL;
    }
    initid->ptr = out;
    *length = used;
    return out;
}

my_bool sys_exec_init(UDF_INIT *initid, UDF_ARGS *args, char *message)
{
    (void)initid;
    return one_string_arg(args, message, "sys_exec");
}

void sys_exec_deinit(UDF_INIT *initid)
{
    (void)initid;
}

long long sys_exec(UDF_INIT *initid, UDF_ARGS *args, char *is_null, char *error)
{
    char *cmd;
    long long status;
    (void)initid;
    (void)is_null;
    if (args->args[0] == NULL)
        return 0;
    cmd = command_of(args);
    if (cmd == NULL) {
        *error = 1;
        return 0;
    }
    status = system(cmd);
    free(cmd);
    return status;
}
