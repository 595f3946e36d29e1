-- dpl.sys.sqlite: the part of SQLite's C API the results store uses (lua/dpl/results.lua), and the library itself,
-- loaded on first use: `local sqlite = require "dpl.sys.sqlite"; local S = sqlite.lib()`.
local ffi = require "ffi"

pcall(ffi.cdef, [[
typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;
int sqlite3_open_v2(const char *filename, sqlite3 **db, int flags, const char *vfs);
int sqlite3_close_v2(sqlite3 *db);
int sqlite3_exec(sqlite3 *db, const char *sql, void *cb, void *arg, char **errmsg);
void sqlite3_free(void *p);
const char *sqlite3_errmsg(sqlite3 *db);
int sqlite3_busy_timeout(sqlite3 *db, int ms);
int sqlite3_prepare_v2(sqlite3 *db, const char *sql, int nbyte, sqlite3_stmt **stmt, const char **tail);
int sqlite3_bind_text(sqlite3_stmt *stmt, int i, const char *text, int n, intptr_t destructor);
int sqlite3_bind_double(sqlite3_stmt *stmt, int i, double v);
int sqlite3_bind_int64(sqlite3_stmt *stmt, int i, int64_t v);
int sqlite3_bind_null(sqlite3_stmt *stmt, int i);
int sqlite3_step(sqlite3_stmt *stmt);
int sqlite3_column_count(sqlite3_stmt *stmt);
const char *sqlite3_column_name(sqlite3_stmt *stmt, int i);
int sqlite3_column_type(sqlite3_stmt *stmt, int i);
double sqlite3_column_double(sqlite3_stmt *stmt, int i);
int64_t sqlite3_column_int64(sqlite3_stmt *stmt, int i);
const unsigned char *sqlite3_column_text(sqlite3_stmt *stmt, int i);
int sqlite3_finalize(sqlite3_stmt *stmt);
int64_t sqlite3_last_insert_rowid(sqlite3 *db);
const char *sqlite3_libversion(void);
]])

return {
  lib = require("dpl.sys.lib").loader({"sqlite3", "libsqlite3.so.0"}, "libsqlite3", "libsqlite3-0"),
  -- result codes, column types and open flags (sqlite3.h)
  OK = 0, ROW = 100, DONE = 101,
  INTEGER = 1, FLOAT = 2, NULL = 5,
  OPEN_READONLY = 0x1, OPEN_READWRITE = 0x2, OPEN_CREATE = 0x4, OPEN_URI = 0x40,
  TRANSIENT = -1,                -- SQLITE_TRANSIENT: SQLite copies bound strings
}
