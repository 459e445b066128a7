/* import_idx.c - IDX files (MNIST / Fashion-MNIST), gzipped or plain, read in slices. */
#include <boundopt/importers.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <zlib.h>

#define IDX_TYPE_UBYTE 0x08
#define IDX_CHUNK      (1 << 20) /* bytes decoded per gzread: bounds memory whatever the slice */

/* Opens path through zlib (which reads plain files transparently). */
static PetscErrorCode idx_open(const char *path, gzFile *gz)
{
  PetscFunctionBegin;
  errno = 0;
  *gz   = gzopen(path, "rb");
  PetscCheck(*gz, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s: cannot open (%s); expected a readable file", path,
             errno ? strerror(errno) : "out of memory");
  gzbuffer(*gz, 256 * 1024); /* fewer read() calls on the 47 MB image files */
  PetscFunctionReturn(0);
}

/* zlib's error text without the "<path>: " it prefixes, which our message already starts with. */
static const char *idx_zlib_reason(gzFile gz, const char *path, int *zerr)
{
  const char *msg = gzerror(gz, zerr);
  size_t      len = strlen(path);

  return strncmp(msg, path, len) == 0 && msg[len] == ':' && msg[len + 1] == ' ' ? msg + len + 2 : msg;
}

/* Reads up to n bytes; *got < n means the file ended.  A read or gzip error is raised here. */
static PetscErrorCode idx_read_bytes(gzFile gz, const char *path, void *buf, size_t n, size_t *got)
{
  PetscFunctionBegin;
  *got = 0;
  while (*got < n) {
    size_t want = n - *got < IDX_CHUNK ? n - *got : IDX_CHUNK;
    int    r    = gzread(gz, (char *)buf + *got, (unsigned)want);

    if (r < 0) {
      int         zerr;
      const char *zmsg = idx_zlib_reason(gz, path, &zerr);

      PetscCheck(zerr != Z_ERRNO, PETSC_COMM_SELF, PETSC_ERR_FILE_READ, "%s: cannot read (%s); expected a readable file", path,
                 strerror(errno));
      SETERRQ(PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "%s: corrupt gzip data (%s); expected a plain or gzipped IDX file", path, zmsg);
    }
    if (r == 0) break; /* end of file (zlib reports a truncated gzip stream as a short read) */
    *got += (size_t)r;
  }
  PetscFunctionReturn(0);
}

static const char *idx_type_name(int type)
{
  switch (type) {
  case 0x08: return "unsigned byte";
  case 0x09: return "signed byte";
  case 0x0B: return "short";
  case 0x0C: return "int";
  case 0x0D: return "float";
  case 0x0E: return "double";
  default: return NULL;
  }
}

static PetscErrorCode idx_check_magic(const char *path, const unsigned char m[4])
{
  const char *type = idx_type_name(m[2]);
  uint32_t    magic = (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 | (uint32_t)m[2] << 8 | m[3];

  PetscFunctionBegin;
  PetscCheck(m[0] == 0 && m[1] == 0 && type, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT,
             "%s: bad magic 0x%08X; expected an IDX file (magic 0x0000080X)", path, (unsigned)magic);
  PetscCheck(m[2] == IDX_TYPE_UBYTE, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT,
             "%s: element type 0x%02X (%s) is not supported; expected unsigned byte data (type 0x08)", path, m[2], type);
  PetscCheck(m[3] >= 1 && m[3] <= BO_IDX_MAX_DIMS, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT,
             "%s: %d dimensions in the header; expected 1 to %d", path, m[3], BO_IDX_MAX_DIMS);
  PetscFunctionReturn(0);
}

/* items = dims[0]; item_size = product of the others, refused if it could not be addressed. */
static PetscErrorCode idx_set_sizes(const char *path, bo_idx_header *h)
{
  PetscFunctionBegin;
  h->items     = h->dims[0];
  h->item_size = 1;
  for (int k = 1; k < h->ndims; k++) {
    PetscCheck(h->dims[k] == 0 || h->item_size <= INT64_MAX / h->dims[k], PETSC_COMM_SELF, PETSC_ERR_USER_INPUT,
               "%s: dimensions multiply past 2^63 bytes per item; expected a real IDX header", path);
    h->item_size *= h->dims[k];
  }
  PetscCheck(h->item_size == 0 || h->items <= (INT64_MAX - h->data_offset) / h->item_size, PETSC_COMM_SELF,
             PETSC_ERR_USER_INPUT, "%s: %" PRId64 " items of %" PRId64 " bytes is too large; expected a file below 2^63 bytes",
             path, h->items, h->item_size);
  PetscFunctionReturn(0);
}

/* Parses the header at the current (start) position of gz. */
static PetscErrorCode idx_parse_header(gzFile gz, const char *path, bo_idx_header *h)
{
  unsigned char raw[4 + 4 * BO_IDX_MAX_DIMS];
  size_t        got, need;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(h, sizeof *h));
  PetscCall(idx_read_bytes(gz, path, raw, 4, &got));
  PetscCheck(got == 4, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "%s: file ends after %zu bytes; expected an IDX header", path, got);
  PetscCall(idx_check_magic(path, raw));
  h->ndims       = raw[3];
  need           = 4 * (size_t)h->ndims;
  h->data_offset = 4 + (int64_t)need;
  PetscCall(idx_read_bytes(gz, path, raw + 4, need, &got));
  PetscCheck(got == need, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT,
             "%s: header ends after %zu bytes; expected %" PRId64 " bytes for %d dimensions", path, 4 + got, h->data_offset,
             h->ndims);
  for (int k = 0; k < h->ndims; k++) {
    const unsigned char *b = raw + 4 + 4 * k;
    h->dims[k]             = (int64_t)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]);
  }
  PetscCall(idx_set_sizes(path, h));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_idx_read_header(const char *path, bo_idx_header *h)
{
  gzFile         gz;
  PetscErrorCode ierr;

  PetscFunctionBegin;
  PetscCall(idx_open(path, &gz));
  ierr = idx_parse_header(gz, path, h);
  gzclose(gz);
  PetscCall(ierr);
  PetscFunctionReturn(0);
}

/* Where decoded bytes go: floats scaled, or int32 labels. */
typedef struct {
  float   *f;
  float    scale;
  int32_t *i;
} idx_sink;

static void idx_sink_put(const idx_sink *s, const unsigned char *b, size_t n, size_t at)
{
  if (s->f)
    for (size_t k = 0; k < n; k++) s->f[at + k] = (float)b[k] * s->scale;
  else
    for (size_t k = 0; k < n; k++) s->i[at + k] = b[k];
}

/* Decodes items [lo,hi) from the current position (the first of them) into s through buf. */
static PetscErrorCode idx_stream_chunks(gzFile gz, const char *path, const bo_idx_header *h, int64_t lo, int64_t hi,
                                        unsigned char *buf, size_t buf_size, const idx_sink *s)
{
  size_t total = (size_t)(hi - lo) * (size_t)h->item_size, done = 0;

  PetscFunctionBegin;
  while (done < total) {
    size_t want = total - done < buf_size ? total - done : buf_size, got;

    PetscCall(idx_read_bytes(gz, path, buf, want, &got));
    idx_sink_put(s, buf, got, done);
    done += got;
    PetscCheck(got == want, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT,
               "%s: file ends inside item %" PRId64 "; expected %" PRId64 " items of %" PRId64 " bytes", path,
               lo + (int64_t)(done / (size_t)h->item_size), h->items, h->item_size);
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode idx_stream_items(gzFile gz, const char *path, const bo_idx_header *h, int64_t lo, int64_t hi,
                                       const idx_sink *s)
{
  size_t         total    = (size_t)(hi - lo) * (size_t)h->item_size;
  size_t         buf_size = total < IDX_CHUNK ? total : IDX_CHUNK;
  unsigned char *buf;
  PetscErrorCode ierr;

  PetscFunctionBegin;
  PetscCall(PetscMalloc1(buf_size, &buf));
  ierr = idx_stream_chunks(gz, path, h, lo, hi, buf, buf_size, s);
  PetscCall(PetscFree(buf));
  PetscCall(ierr);
  PetscFunctionReturn(0);
}

/* Header check, range check, skip to item lo, stream [lo,hi). */
static PetscErrorCode idx_read_range(gzFile gz, const char *path, int64_t lo, int64_t hi, PetscBool labels_only,
                                     const idx_sink *s)
{
  bo_idx_header h;

  PetscFunctionBegin;
  PetscCall(idx_parse_header(gz, path, &h));
  PetscCheck(!labels_only || h.ndims == 1, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT,
             "%s: %d dimensions; expected a 1-D labels file", path, h.ndims);
  PetscCheck(0 <= lo && lo <= hi && hi <= h.items, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE,
             "%s: items [%" PRId64 ",%" PRId64 ") requested; expected a range within [0,%" PRId64 ")", path, lo, hi, h.items);
  if (lo == hi || h.item_size == 0) PetscFunctionReturn(0);
  /* gzseek forward decompresses and discards: no seekable-gzip index needed.  A seek past the
   * end surfaces as a short read below, which names the item. */
  if (lo > 0 && gzseek(gz, (z_off_t)(h.data_offset + lo * h.item_size), SEEK_SET) < 0) {
    int         zerr;
    const char *zmsg = idx_zlib_reason(gz, path, &zerr);
    SETERRQ(PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "%s: cannot skip to item %" PRId64 " (%s); expected a plain or gzipped IDX file",
            path, lo, zerr == Z_ERRNO ? strerror(errno) : zmsg);
  }
  PetscCall(idx_stream_items(gz, path, &h, lo, hi, s));
  PetscFunctionReturn(0);
}

static PetscErrorCode idx_read_into(const char *path, int64_t lo, int64_t hi, PetscBool labels_only, const idx_sink *s)
{
  gzFile         gz;
  PetscErrorCode ierr;

  PetscFunctionBegin;
  PetscCall(idx_open(path, &gz));
  ierr = idx_read_range(gz, path, lo, hi, labels_only, s);
  gzclose(gz);
  PetscCall(ierr);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_idx_read_items(const char *path, int64_t lo, int64_t hi, float scale, float *out)
{
  idx_sink s = {.f = out, .scale = scale, .i = NULL};

  PetscFunctionBegin;
  PetscCall(idx_read_into(path, lo, hi, PETSC_FALSE, &s));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_idx_read_labels(const char *path, int64_t lo, int64_t hi, int32_t *out)
{
  idx_sink s = {.f = NULL, .scale = 0, .i = out};

  PetscFunctionBegin;
  PetscCall(idx_read_into(path, lo, hi, PETSC_TRUE, &s));
  PetscFunctionReturn(0);
}
