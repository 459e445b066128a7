/* test_importers.c - IDX, CSV and PNG parsers against fixtures written at run time (in a mkdtemp
 * directory, removed afterwards), plus the real data sets when this machine has them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <boundopt/importers.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define FASHION_DIR  "/usr/share/datasets/fashion-mnist"
#define LETTERS_CSV  "/work/shared/data/letters/letter-recognition.data"
#define IMAGES_DIR   "/work/shared/data/images"
#define MAX_FIXTURES 64

/* ---- fixture directory ---------------------------------------------------------------------- */

static char fixture_dir[64];
static char fixture_paths[MAX_FIXTURES][128];
static int  nfixtures;

/* A path inside the temp dir, remembered so teardown can remove it. */
static const char *fixture(const char *name)
{
  assert_true(nfixtures < MAX_FIXTURES);
  snprintf(fixture_paths[nfixtures], sizeof fixture_paths[0], "%s/%s", fixture_dir, name);
  return fixture_paths[nfixtures++];
}

static int make_fixture_dir(void **state)
{
  (void)state;
  strcpy(fixture_dir, "/tmp/bo_importers_XXXXXX");
  return mkdtemp(fixture_dir) ? 0 : -1;
}

static int remove_fixture_dir(void **state)
{
  (void)state;
  for (int k = 0; k < nfixtures; k++) remove(fixture_paths[k]);
  return rmdir(fixture_dir);
}

static void write_bytes(const char *path, const void *bytes, size_t n)
{
  FILE *fp = fopen(path, "wb");

  assert_non_null(fp);
  assert_int_equal(fwrite(bytes, 1, n, fp), n);
  assert_int_equal(fclose(fp), 0);
}

static void write_gzip(const char *path, const void *bytes, size_t n)
{
  gzFile gz = gzopen(path, "wb");

  assert_non_null(gz);
  assert_int_equal(gzwrite(gz, bytes, (unsigned)n), (int)n);
  assert_int_equal(gzclose(gz), Z_OK);
}

static void write_text(const char *path, const char *text)
{
  write_bytes(path, text, strlen(text));
}

/* ---- error capture ---------------------------------------------------------------------------- */

static char captured[2048];

/* Keeps the first (innermost) message of an error; PETSc then passes the code back up. */
static PetscErrorCode capture_first_error(MPI_Comm comm, int line, const char *fun, const char *file, PetscErrorCode n,
                                          PetscErrorType p, const char *mess, void *ctx)
{
  (void)comm, (void)line, (void)fun, (void)file, (void)ctx;
  if (p == PETSC_ERROR_INITIAL) snprintf(captured, sizeof captured, "%s", mess ? mess : "");
  return n;
}

static void capture_errors(void)
{
  captured[0] = '\0';
  assert_int_equal(PetscPushErrorHandler(capture_first_error, NULL), 0);
}

static void assert_contains(const char *text, const char *part)
{
  if (!strstr(text, part)) fail_msg("message \"%s\" lacks \"%s\"", text, part);
}

/* The call failed with `code`, one line "<path>...; expected ..." that contains `part`. */
static void assert_error(PetscErrorCode ierr, PetscErrorCode code, const char *path, const char *part)
{
  assert_int_equal(PetscPopErrorHandler(), 0);
  if (ierr != code) fail_msg("error code %d, expected %d; message \"%s\"", (int)ierr, (int)code, captured);
  if (strncmp(captured, path, strlen(path))) fail_msg("message \"%s\" does not start with \"%s\"", captured, path);
  assert_contains(captured, "; expected ");
  assert_contains(captured, part);
  assert_null(strchr(captured, '\n'));
}

/* ---- IDX -------------------------------------------------------------------------------------- */

/* Header bytes then data: magic 00 00 08 ndims, big-endian dims. Returns the total size. */
static size_t idx_bytes(unsigned char *buf, int ndims, const uint32_t *dims, const unsigned char *data, size_t ndata)
{
  size_t at = 0;

  buf[at++] = 0, buf[at++] = 0, buf[at++] = 0x08, buf[at++] = (unsigned char)ndims;
  for (int k = 0; k < ndims; k++)
    for (int shift = 24; shift >= 0; shift -= 8) buf[at++] = (unsigned char)(dims[k] >> shift);
  if (ndata) memcpy(buf + at, data, ndata);
  return at + ndata;
}

static void test_idx_plain_and_gzip_read_the_same(void **state)
{
  const uint32_t dims[3] = {5, 3, 2}, label_dims[1] = {7};
  unsigned char  data[30], labels[7], file[64];
  const char    *names[2][2] = {{"images.idx", "labels.idx"}, {"images.idx.gz", "labels.idx.gz"}};
  size_t         n;

  (void)state;
  for (int k = 0; k < 30; k++) data[k] = (unsigned char)(k * 37 % 256);
  for (int k = 0; k < 7; k++) labels[k] = (unsigned char)(9 - k);
  for (int gz = 0; gz < 2; gz++) {
    const char   *images = fixture(names[gz][0]), *labelfile = fixture(names[gz][1]);
    bo_idx_header h;
    float         out[30];
    int32_t       lab[7];

    n = idx_bytes(file, 3, dims, data, sizeof data);
    gz ? write_gzip(images, file, n) : write_bytes(images, file, n);
    n = idx_bytes(file, 1, label_dims, labels, sizeof labels);
    gz ? write_gzip(labelfile, file, n) : write_bytes(labelfile, file, n);

    assert_int_equal(bo_idx_read_header(images, &h), 0);
    assert_int_equal(h.ndims, 3);
    assert_true(h.dims[0] == 5 && h.dims[1] == 3 && h.dims[2] == 2 && h.dims[3] == 0);
    assert_true(h.items == 5 && h.item_size == 6 && h.data_offset == 16);

    assert_int_equal(bo_idx_read_items(images, 1, 4, 1.0f / 255, out), 0);
    for (int k = 0; k < 18; k++) assert_true(out[k] == (float)data[6 + k] * (1.0f / 255));
    assert_int_equal(bo_idx_read_items(images, 0, 5, 1.0f, out), 0);
    for (int k = 0; k < 30; k++) assert_true(out[k] == (float)data[k]);
    assert_int_equal(bo_idx_read_items(images, 5, 5, 1.0f, out), 0); /* empty range at the end */

    assert_int_equal(bo_idx_read_header(labelfile, &h), 0);
    assert_true(h.ndims == 1 && h.items == 7 && h.item_size == 1);
    assert_int_equal(bo_idx_read_labels(labelfile, 2, 6, lab), 0);
    for (int k = 0; k < 4; k++) assert_int_equal(lab[k], 9 - (k + 2));
  }
}

static void test_idx_truncated_files_name_the_item(void **state)
{
  const uint32_t dims[3] = {4, 2, 2};
  unsigned char  data[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, file[64];
  const char    *header_only = fixture("header_only.idx"), *short_data = fixture("short.idx.gz");
  const char    *cut_header = fixture("cut_header.idx"), *cut_gzip = fixture("cut.idx.gz");
  bo_idx_header  h;
  float          out[16];
  size_t         n;
  PetscErrorCode ierr;

  (void)state;
  n = idx_bytes(file, 3, dims, NULL, 0);
  write_bytes(header_only, file, n);
  assert_int_equal(bo_idx_read_header(header_only, &h), 0); /* the header alone is fine */
  capture_errors();
  ierr = bo_idx_read_items(header_only, 0, 1, 1.0f, out);
  assert_error(ierr, PETSC_ERR_USER_INPUT, header_only, "ends inside item 0; expected 4 items of 4 bytes");

  n = idx_bytes(file, 3, dims, data, sizeof data); /* 2.5 items */
  write_gzip(short_data, file, n);
  capture_errors();
  ierr = bo_idx_read_items(short_data, 1, 4, 1.0f, out);
  assert_error(ierr, PETSC_ERR_USER_INPUT, short_data, "item 2");
  capture_errors(); /* the seek itself runs past the end */
  ierr = bo_idx_read_items(short_data, 3, 4, 1.0f, out);
  assert_error(ierr, PETSC_ERR_USER_INPUT, short_data, "item 3");

  write_bytes(cut_header, file, 10); /* magic + 1.5 of 3 dims */
  capture_errors();
  ierr = bo_idx_read_header(cut_header, &h);
  assert_error(ierr, PETSC_ERR_USER_INPUT, cut_header, "header ends after 10 bytes; expected 16 bytes");

  { /* a gzip stream cut in the middle: zlib returns what it could, the reader names the item */
    unsigned char big[16 + 4 * 4096];
    uint32_t      bigdims[3] = {4096, 2, 2};
    FILE         *fp;
    long          size;
    char         *gzbytes;

    n = idx_bytes(big, 3, bigdims, NULL, 0);
    for (size_t k = n; k < sizeof big; k++) big[k] = (unsigned char)((k * 2654435761u) >> 11); /* poorly compressible */
    write_gzip(cut_gzip, big, sizeof big);
    fp = fopen(cut_gzip, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    size = ftell(fp);
    rewind(fp);
    gzbytes = malloc((size_t)size);
    assert_int_equal(fread(gzbytes, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    write_bytes(cut_gzip, gzbytes, (size_t)size / 2);
    free(gzbytes);
    capture_errors();
    {
      float *all = malloc(sizeof(float) * 4 * 4096);
      ierr       = bo_idx_read_items(cut_gzip, 0, 4096, 1.0f, all);
      free(all);
    }
    assert_error(ierr, PETSC_ERR_USER_INPUT, cut_gzip, "ends inside item");
  }
}

static void test_idx_corrupt_gzip_is_reported(void **state)
{
  const uint32_t dims[1] = {200};
  unsigned char  labels[200], file[256];
  const char    *path = fixture("bad_crc.idx.gz");
  int32_t        out[200];
  FILE          *fp;
  long           size;
  unsigned char *bytes;
  PetscErrorCode ierr;

  (void)state;
  for (int k = 0; k < 200; k++) labels[k] = (unsigned char)(k % 10);
  write_gzip(path, file, idx_bytes(file, 1, dims, labels, sizeof labels));
  fp = fopen(path, "rb");
  assert_non_null(fp);
  fseek(fp, 0, SEEK_END);
  size  = ftell(fp);
  bytes = malloc((size_t)size);
  rewind(fp);
  assert_int_equal(fread(bytes, 1, (size_t)size, fp), (size_t)size);
  fclose(fp);
  bytes[size - 8] ^= 0xff; /* the CRC-32 in the gzip trailer */
  write_bytes(path, bytes, (size_t)size);
  free(bytes);
  capture_errors();
  ierr = bo_idx_read_labels(path, 0, 200, out);
  assert_error(ierr, PETSC_ERR_USER_INPUT, path, "corrupt gzip data (incorrect data check); expected a plain or gzipped IDX file");
}

static void test_idx_bad_headers_are_refused(void **state)
{
  const char         *bad_magic = fixture("bad_magic.idx"), *floats = fixture("floats.idx"), *zero_dims = fixture("zero_dims.idx");
  const char         *missing = fixture("missing.idx"), *text = fixture("text.idx");
  const unsigned char magic[8] = {0x12, 0x34, 0x56, 0x78, 0, 0, 0, 1}, float_magic[8] = {0, 0, 0x0D, 1, 0, 0, 0, 1};
  const unsigned char zero_magic[4] = {0, 0, 0x08, 0};
  bo_idx_header       h;
  PetscErrorCode      ierr;

  (void)state;
  write_bytes(bad_magic, magic, sizeof magic);
  write_bytes(floats, float_magic, sizeof float_magic);
  write_bytes(zero_dims, zero_magic, sizeof zero_magic);
  write_text(text, "hello\n");

  capture_errors();
  ierr = bo_idx_read_header(bad_magic, &h);
  assert_error(ierr, PETSC_ERR_USER_INPUT, bad_magic, "bad magic 0x12345678; expected an IDX file (magic 0x0000080X)");
  capture_errors();
  ierr = bo_idx_read_header(text, &h);
  assert_error(ierr, PETSC_ERR_USER_INPUT, text, "bad magic 0x68656C6C");
  capture_errors();
  ierr = bo_idx_read_header(floats, &h);
  assert_error(ierr, PETSC_ERR_USER_INPUT, floats, "element type 0x0D (float) is not supported; expected unsigned byte");
  capture_errors();
  ierr = bo_idx_read_header(zero_dims, &h);
  assert_error(ierr, PETSC_ERR_USER_INPUT, zero_dims, "0 dimensions in the header; expected 1 to 4");
  capture_errors();
  ierr = bo_idx_read_header(missing, &h);
  assert_error(ierr, PETSC_ERR_FILE_OPEN, missing, "cannot open (No such file or directory); expected a readable file");
}

static void test_idx_range_and_shape_are_checked(void **state)
{
  const uint32_t dims[2] = {3, 2};
  unsigned char  data[6] = {0}, file[32];
  const char    *path    = fixture("range.idx");
  float          out[8];
  int32_t        lab[8];
  PetscErrorCode ierr;

  (void)state;
  write_bytes(path, file, idx_bytes(file, 2, dims, data, sizeof data));
  capture_errors();
  ierr = bo_idx_read_items(path, 1, 4, 1.0f, out);
  assert_error(ierr, PETSC_ERR_ARG_OUTOFRANGE, path, "items [1,4) requested; expected a range within [0,3)");
  capture_errors();
  ierr = bo_idx_read_items(path, 2, 1, 1.0f, out);
  assert_error(ierr, PETSC_ERR_ARG_OUTOFRANGE, path, "[2,1)");
  capture_errors();
  ierr = bo_idx_read_labels(path, 0, 3, lab);
  assert_error(ierr, PETSC_ERR_USER_INPUT, path, "2 dimensions; expected a 1-D labels file");
}

/* ---- CSV -------------------------------------------------------------------------------------- */

static void test_csv_text_labels_map_in_sorted_order(void **state)
{
  const char  *path = fixture("text_labels.csv");
  const float  x[8] = {1.5f, 2, 3, 4, -100, 0.25f, 5, 6};
  const int    want[4] = {2, 0, 1, 2};
  bo_csv_table t;

  (void)state;
  write_text(path, "1.5, 2, cat\n3,4,ant\n-1e2,0.25,\"bee\"\n5 ,6,cat"); /* no final newline */
  assert_int_equal(bo_csv_read(path, 2, &t), 0);
  assert_true(t.n == 4 && t.d == 2 && t.nclasses == 3);
  for (int k = 0; k < 8; k++) assert_true(t.x[k] == x[k]);
  for (int k = 0; k < 4; k++) assert_int_equal(t.labels[k], want[k]);
  assert_non_null(t.class_names);
  assert_string_equal(t.class_names[0], "ant");
  assert_string_equal(t.class_names[1], "bee");
  assert_string_equal(t.class_names[2], "cat");
  assert_int_equal(bo_csv_table_destroy(&t), 0);
  assert_null(t.x);
}

static void test_csv_numeric_labels_header_and_blank_lines(void **state)
{
  const char  *path = fixture("numeric.csv");
  const float  x[6] = {0.5f, 1, 1, 2, 2, 3};
  bo_csv_table t;

  (void)state;
  write_text(path, "label,f1,f2\r\n\r\n3,0.5,1\r\n0,1,2\r\n   \n7,2,3\r\n\n");
  assert_int_equal(bo_csv_read(path, 0, &t), 0);
  assert_true(t.n == 3 && t.d == 2 && t.nclasses == 8);
  assert_null(t.class_names);
  for (int k = 0; k < 6; k++) assert_true(t.x[k] == x[k]);
  assert_true(t.labels[0] == 3 && t.labels[1] == 0 && t.labels[2] == 7);
  assert_int_equal(bo_csv_table_destroy(&t), 0);
}

static void test_csv_errors_name_line_and_column(void **state)
{
  const char    *ragged = fixture("ragged.csv"), *word = fixture("word.csv"), *nan = fixture("nan.csv");
  const char    *empty = fixture("empty.csv"), *missing = fixture("missing.csv"), *blank_label = fixture("blank_label.csv");
  bo_csv_table   t;
  PetscErrorCode ierr;

  (void)state;
  write_text(ragged, "a,1,2\nb,3,4\nc,5,6,7\n");
  write_text(word, "1,2,a\n\n3,4,b\n5,abc,c\n");
  write_text(nan, "1,nan,a\n");
  write_text(empty, "\n\n");
  write_text(blank_label, "1,2,x\n3,4,\n");

  capture_errors();
  ierr = bo_csv_read(ragged, 0, &t);
  assert_error(ierr, PETSC_ERR_USER_INPUT, ragged, ":3: 4 fields; expected 3 like line 1");
  assert_null(t.x);
  capture_errors();
  ierr = bo_csv_read(word, 2, &t);
  assert_error(ierr, PETSC_ERR_USER_INPUT, word, ":4: column 1: 'abc' is not a number; expected a numeric feature");
  capture_errors();
  ierr = bo_csv_read(nan, 2, &t);
  assert_error(ierr, PETSC_ERR_USER_INPUT, nan, ":1: column 1: 'nan' is not finite");
  capture_errors();
  ierr = bo_csv_read(ragged, 3, &t);
  assert_error(ierr, PETSC_ERR_USER_INPUT, ragged, ":1: 3 fields, so no label column 3; expected a label column from 0 to 2");
  capture_errors();
  ierr = bo_csv_read(empty, 0, &t);
  assert_error(ierr, PETSC_ERR_USER_INPUT, empty, "no data rows");
  capture_errors();
  ierr = bo_csv_read(blank_label, 2, &t);
  assert_error(ierr, PETSC_ERR_USER_INPUT, blank_label, ":2: column 2: empty label");
  capture_errors();
  ierr = bo_csv_read(missing, 0, &t);
  assert_error(ierr, PETSC_ERR_FILE_OPEN, missing, "cannot open (No such file or directory)");
}

/* ---- PNG -------------------------------------------------------------------------------------- */

static double clamp01(double v)
{
  return v > 0 ? (v < 1 ? v : 1) : 0;
}

/* Writes an h x w x c pattern (with out-of-range values at the corners) and reads it back. */
static void png_round_trip(const char *name, int c, int bit_depth)
{
  const char *path = fixture(name);
  const int   h = 5, w = 7;
  double      data[5 * 7 * 3], tolerance = 0.5 / ((1 << bit_depth) - 1) + 1e-12;
  bo_image    img = {.h = h, .w = w, .c = c, .data = data}, back;

  for (int k = 0; k < h * w * c; k++) data[k] = fmod(k * 0.618033988749895, 1.0);
  data[0]             = -0.5;
  data[1]             = 1.5;
  data[h * w * c - 1] = NAN;
  assert_int_equal(bo_png_write(path, &img, bit_depth), 0);
  assert_int_equal(bo_png_read(path, &back), 0);
  assert_true(back.h == h && back.w == w && back.c == c && back.bit_depth == bit_depth);
  for (int k = 0; k < h * w * c; k++) {
    double want = isnan(data[k]) ? 0 : clamp01(data[k]);
    if (fabs(back.data[k] - want) > tolerance) fail_msg("%s: sample %d read %.9f, wrote %.9f", name, k, back.data[k], want);
  }
  assert_int_equal(bo_image_destroy(&back), 0);
  assert_null(back.data);
}

static void test_png_round_trips(void **state)
{
  (void)state;
  png_round_trip("grey8.png", 1, 8);
  png_round_trip("grey16.png", 1, 16);
  png_round_trip("rgb8.png", 3, 8);
  png_round_trip("rgb16.png", 3, 16);
}

/* Raw libpng writer for the variants bo_png_write never produces (palette, alpha, 1-bit, Adam7). */
static void write_png_raw(const char *path, int w, int h, int color_type, int bit_depth, int interlace, png_bytep *rows,
                          const png_color *palette, int npalette, const png_byte *trans, int ntrans)
{
  FILE       *fp   = fopen(path, "wb");
  png_structp png  = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop   info = png_create_info_struct(png);

  assert_non_null(fp);
  assert_true(png && info);
  if (setjmp(png_jmpbuf(png))) fail_msg("libpng failed writing %s", path);
  png_init_io(png, fp);
  png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, bit_depth, color_type, interlace, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (palette) png_set_PLTE(png, info, palette, npalette);
  if (trans) png_set_tRNS(png, info, trans, ntrans, NULL);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  assert_int_equal(fclose(fp), 0);
}

static void test_png_palette_alpha_and_low_bit_inputs(void **state)
{
  const char     *palette_path = fixture("palette.png"), *grey_alpha = fixture("grey_alpha.png");
  const char     *rgba16 = fixture("rgba16.png"), *bits1 = fixture("bits1_adam7.png");
  const png_color palette[2] = {{255, 0, 0}, {0, 0, 255}};
  const png_byte  trans[2] = {0, 128};
  png_byte        pal_rows[2][2] = {{0x01, 0}, {0x10, 0}}; /* 4-bit indices: [0 1 ...], [1 0 ...] (3 wide) */
  png_byte        ga_rows[1][4] = {{64, 0, 200, 255}};
  png_byte        rgba_rows[1][8] = {{0xff, 0xff, 0x80, 0x00, 0x00, 0x01, 0x12, 0x34}};
  png_byte        bit_rows[9][1];
  png_bytep       rows[9];
  bo_image        img;

  (void)state;
  for (int y = 0; y < 2; y++) rows[y] = pal_rows[y];
  write_png_raw(palette_path, 3, 2, PNG_COLOR_TYPE_PALETTE, 4, PNG_INTERLACE_NONE, rows, palette, 2, trans, 2);
  assert_int_equal(bo_png_read(palette_path, &img), 0);
  assert_true(img.h == 2 && img.w == 3 && img.c == 3 && img.bit_depth == 8);
  assert_true(img.data[0] == 1 && img.data[1] == 0 && img.data[2] == 0); /* (0,0) red, transparency dropped */
  assert_true(img.data[3] == 0 && img.data[5] == 1);                     /* (0,1) blue */
  assert_true(img.data[9] == 0 && img.data[11] == 1);                    /* (1,0) blue */
  assert_int_equal(bo_image_destroy(&img), 0);

  rows[0] = ga_rows[0];
  write_png_raw(grey_alpha, 2, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_NONE, rows, NULL, 0, NULL, 0);
  assert_int_equal(bo_png_read(grey_alpha, &img), 0);
  assert_true(img.c == 1 && img.w == 2 && img.data[0] == 64 / 255.0 && img.data[1] == 200 / 255.0);
  assert_int_equal(bo_image_destroy(&img), 0);

  rows[0] = rgba_rows[0];
  write_png_raw(rgba16, 1, 1, PNG_COLOR_TYPE_RGB_ALPHA, 16, PNG_INTERLACE_NONE, rows, NULL, 0, NULL, 0);
  assert_int_equal(bo_png_read(rgba16, &img), 0);
  assert_true(img.c == 3 && img.bit_depth == 16);
  assert_true(img.data[0] == 1 && img.data[1] == 0x8000 / 65535.0 && img.data[2] == 1 / 65535.0);
  assert_int_equal(bo_image_destroy(&img), 0);

  for (int y = 0; y < 9; y++) bit_rows[y][0] = (png_byte)(y % 2 ? 0xA0 : 0x40), rows[y] = bit_rows[y]; /* 3 wide */
  write_png_raw(bits1, 3, 9, PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_ADAM7, rows, NULL, 0, NULL, 0);
  assert_int_equal(bo_png_read(bits1, &img), 0);
  assert_true(img.h == 9 && img.w == 3 && img.c == 1 && img.bit_depth == 8);
  for (int y = 0; y < 9; y++)
    for (int x = 0; x < 3; x++) {
      int bit = (bit_rows[y][0] >> (7 - x)) & 1;
      assert_true(img.data[y * 3 + x] == bit);
    }
  assert_int_equal(bo_image_destroy(&img), 0);
}

static void test_png_errors(void **state)
{
  const char    *not_png = fixture("not.png"), *cut = fixture("cut.png"), *missing = fixture("missing.png");
  const char    *unwritable = "/nonexistent-dir/out.png";
  double         data[64 * 64];
  bo_image       img = {.h = 64, .w = 64, .c = 1, .data = data}, back;
  FILE          *fp;
  unsigned char  bytes[8192];
  size_t         n;
  PetscErrorCode ierr;

  (void)state;
  write_text(not_png, "GIF89a, not a PNG at all\n");
  capture_errors();
  ierr = bo_png_read(not_png, &back);
  assert_error(ierr, PETSC_ERR_USER_INPUT, not_png, "not a PNG file (bad signature); expected a PNG image");
  assert_null(back.data);

  for (int k = 0; k < 64 * 64; k++) data[k] = (k * 7919 % 1000) / 999.0; /* noisy: IDAT is most of the file */
  assert_int_equal(bo_png_write(cut, &img, 8), 0);
  fp = fopen(cut, "rb");
  assert_non_null(fp);
  n = fread(bytes, 1, sizeof bytes, fp);
  fclose(fp);
  write_bytes(cut, bytes, n / 2);
  capture_errors();
  ierr = bo_png_read(cut, &back);
  assert_error(ierr, PETSC_ERR_USER_INPUT, cut, "corrupt PNG (");

  capture_errors();
  ierr = bo_png_read(missing, &back);
  assert_error(ierr, PETSC_ERR_FILE_OPEN, missing, "cannot open (No such file or directory)");
  capture_errors();
  ierr = bo_png_write(cut, &img, 12);
  assert_error(ierr, PETSC_ERR_ARG_OUTOFRANGE, cut, "bit depth 12 requested; expected 8 or 16");
  img.c = 2;
  capture_errors();
  ierr = bo_png_write(cut, &img, 8);
  assert_error(ierr, PETSC_ERR_ARG_OUTOFRANGE, cut, "2 channels; expected 1 (grey) or 3 (RGB)");
  img.c = 1;
  capture_errors();
  ierr = bo_png_write(unwritable, &img, 8);
  assert_error(ierr, PETSC_ERR_FILE_OPEN, unwritable, "cannot open for writing (No such file or directory)");
}

/* ---- real data (skipped where absent) --------------------------------------------------------- */

static void test_real_fashion_mnist(void **state)
{
  const char   *images = FASHION_DIR "/train-images-idx3-ubyte.gz", *labels = FASHION_DIR "/train-labels-idx1-ubyte.gz";
  bo_idx_header h;
  int32_t      *lab;
  float         tail[2 * 784];
  int64_t       count[10] = {0};

  (void)state;
  if (access(images, R_OK) || access(labels, R_OK)) skip();
  assert_int_equal(bo_idx_read_header(images, &h), 0);
  assert_true(h.ndims == 3 && h.dims[0] == 60000 && h.dims[1] == 28 && h.dims[2] == 28);
  assert_true(h.items == 60000 && h.item_size == 784);
  assert_int_equal(bo_idx_read_items(images, 59998, 60000, 1.0f / 255, tail), 0); /* seeks through the whole file */
  for (int k = 0; k < 2 * 784; k++) assert_true(tail[k] >= 0 && tail[k] <= 1);

  lab = malloc(sizeof *lab * 60000);
  assert_int_equal(bo_idx_read_labels(labels, 0, 60000, lab), 0);
  assert_int_equal(lab[0], 9);
  for (int i = 0; i < 60000; i++) {
    assert_true(lab[i] >= 0 && lab[i] < 10);
    count[lab[i]]++;
  }
  for (int c = 0; c < 10; c++) assert_int_equal(count[c], 6000); /* Fashion-MNIST is balanced */
  free(lab);
}

static void test_real_letters_csv(void **state)
{
  bo_csv_table t;

  (void)state;
  if (access(LETTERS_CSV, R_OK)) skip();
  assert_int_equal(bo_csv_read(LETTERS_CSV, 0, &t), 0);
  assert_true(t.n == 20000 && t.d == 16 && t.nclasses == 26);
  assert_string_equal(t.class_names[t.labels[0]], "T"); /* first row: T,2,8,3,5,... */
  assert_int_equal(t.labels[0], 'T' - 'A');
  assert_true(t.x[0] == 2 && t.x[1] == 8 && t.x[2] == 3);
  assert_string_equal(t.class_names[0], "A");
  assert_string_equal(t.class_names[25], "Z");
  assert_int_equal(bo_csv_table_destroy(&t), 0);
}

static void test_real_images(void **state)
{
  const struct {
    const char *name;
    int64_t     h, w;
    int         c;
  } cases[] = {
    {"camera.png",                  512, 512, 1},
    {"astronaut.png",               512, 512, 3},
    {"BrainProtonDensitySlice.png", 217, 181, 3}, /* a palette image */
  };
  int found = 0;

  (void)state;
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    char     path[256];
    bo_image img;
    double   lo = 1, hi = 0;

    snprintf(path, sizeof path, "%s/%s", IMAGES_DIR, cases[k].name);
    if (access(path, R_OK)) continue;
    found++;
    assert_int_equal(bo_png_read(path, &img), 0);
    if (img.h != cases[k].h || img.w != cases[k].w || img.c != cases[k].c)
      fail_msg("%s: %lldx%lldx%d", path, (long long)img.h, (long long)img.w, img.c);
    assert_int_equal(img.bit_depth, 8);
    for (int64_t i = 0; i < img.h * img.w * img.c; i++) lo = fmin(lo, img.data[i]), hi = fmax(hi, img.data[i]);
    assert_true(lo >= 0 && hi <= 1 && hi > lo);
    assert_int_equal(bo_image_destroy(&img), 0);
  }
  if (!found) skip();
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_idx_plain_and_gzip_read_the_same),
    cmocka_unit_test(test_idx_truncated_files_name_the_item),
    cmocka_unit_test(test_idx_corrupt_gzip_is_reported),
    cmocka_unit_test(test_idx_bad_headers_are_refused),
    cmocka_unit_test(test_idx_range_and_shape_are_checked),
    cmocka_unit_test(test_csv_text_labels_map_in_sorted_order),
    cmocka_unit_test(test_csv_numeric_labels_header_and_blank_lines),
    cmocka_unit_test(test_csv_errors_name_line_and_column),
    cmocka_unit_test(test_png_round_trips),
    cmocka_unit_test(test_png_palette_alpha_and_low_bit_inputs),
    cmocka_unit_test(test_png_errors),
    cmocka_unit_test(test_real_fashion_mnist),
    cmocka_unit_test(test_real_letters_csv),
    cmocka_unit_test(test_real_images),
  };
  int failed;

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  failed = cmocka_run_group_tests(tests, make_fixture_dir, remove_fixture_dir);
  PetscCall(PetscFinalize());
  return failed ? 1 : 0;
}
