/* image.c - reading PNG (libpng), JPEG (libjpeg-turbo, the decoder Pillow uses, so pixels match Pillow exactly) and
 * TIFF (libtiff) into C x H x W float tensors in [0, 1], and writing 8-bit PNGs from tensors.
 *
 * The format is chosen by the file's first bytes, not its name. Every decoder reports errors through a handler that
 * longjmps (libpng, libjpeg) or records a message (libtiff), so a corrupt or truncated file gives an error naming
 * the file instead of a crash or an exit(). Channel conversions follow Pillow: RGB -> L is Pillow's
 * L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16, alpha is dropped without compositing, gray is repeated to RGB. */
#include "internal.h"
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <unistd.h>
#include <jpeglib.h>   /* after stdio.h: jpeglib.h needs FILE and size_t */
#include <jerror.h>

/* A decoded image before conversion: interleaved samples, 8 or 16 bits. */
typedef struct raw_image {
  int width, height, channels, depth;   /* channels 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA; depth 8 or 16 */
  unsigned char *data;                  /* 16-bit samples are stored as native uint16_t */
} raw_image;

/* Pillow's decompression-bomb policy: an image of more than DPL_MAX_IMAGE_PIXELS pixels (default Pillow's
 * Image.MAX_IMAGE_PIXELS, 89,478,485 = 1 GiB / 4 / 3) loads with a warning, one of more than twice that is refused
 * from its header, before any pixel memory is allocated. DPL_MAX_IMAGE_PIXELS=0 turns the limit off; 2^40 pixels
 * stay the hard bound that keeps every size computation free of overflow. docs/robustness.md. */
static const int64_t DEFAULT_MAX_PIXELS = 89478485;
static const int64_t HARD_MAX_PIXELS = INT64_C(1) << 40;
enum { MAX_SIDE = 1 << 16, MAX_WARNINGS = 10 };   /* MAX_SIDE: PNG writing only */

static int64_t max_pixels(void) {
  const char *e = getenv("DPL_MAX_IMAGE_PIXELS");
  if (!e || !*e) return DEFAULT_MAX_PIXELS;
  char *end;
  long long v = strtoll(e, &end, 10);
  if (*end || v < 0) return DEFAULT_MAX_PIXELS;
  return v;
}

static int check_size(const char *path, long w, long h) {
  if (w <= 0 || h <= 0 || w > INT32_MAX || h > INT32_MAX || (int64_t)w * h > HARD_MAX_PIXELS)
    return dpl_fail(DPL_ERR_IO, "%s: invalid or unsupported image size %ld x %ld", path, w, h);
  int64_t pixels = (int64_t)w * h, limit = max_pixels();
  if (limit > 0 && pixels > 2 * limit)
    return dpl_fail(DPL_ERR_IO, "%s: image size %ld x %ld (%lld pixels) exceeds the limit of twice %lld pixels "
                    "(could be a decompression bomb; raise DPL_MAX_IMAGE_PIXELS, or set it to 0 for no limit)", path, w,
                    h, (long long)pixels, (long long)limit);
  if (limit > 0 && pixels > limit) {
    static int warnings;
    int k = __atomic_fetch_add(&warnings, 1, __ATOMIC_RELAXED);
    if (k < MAX_WARNINGS)
      fprintf(stderr, "dpl: warning: %s: image size %ld x %ld (%lld pixels) exceeds DPL_MAX_IMAGE_PIXELS = %lld and "
              "could be a decompression bomb%s\n", path, w, h, (long long)pixels, (long long)limit,
              k == MAX_WARNINGS - 1 ? " (further warnings of this kind are not shown)" : "");
  }
  return DPL_OK;
}

/* ---- PNG ---------------------------------------------------------------------------------------------------- */
typedef struct png_ctx {
  jmp_buf jump;
  char message[256];
} png_ctx;

static void png_on_error(png_structp png, png_const_charp msg) {
  png_ctx *ctx = png_get_error_ptr(png);
  snprintf(ctx->message, sizeof ctx->message, "%s", msg);
  longjmp(ctx->jump, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static int read_png(FILE *f, const char *path, raw_image *img) {
  png_ctx ctx = {.message = ""};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
  }
  unsigned char *volatile data = NULL;
  png_bytep *volatile rows = NULL;
  if (setjmp(ctx.jump)) {
    free(data);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return dpl_fail(DPL_ERR_IO, "%s: corrupt or truncated PNG (%s)", path, ctx.message);
  }
  png_init_io(png, f);
  /* The ancillary chunks that libpng reads whole into memory (text, ICC profiles, suggested palettes, Exif,
     calibration) change no pixel value as dpl (and Pillow) decodes them: skip them unread. libpng 1.6 allocates and
     zeroes a buffer of a chunk's declared length before reading it, so a 44-byte file declaring a 2 GB tEXt chunk
     took 2 GB and seconds; skipped, it fails at once at the end of the file. Other chunks: at most 8 MB each. */
  static const png_byte ignored[] = "tEXt\0zTXt\0iTXt\0iCCP\0sPLT\0eXIf\0pCAL\0sCAL\0hIST\0";
  png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, ignored, (int)(sizeof ignored / 5));
  png_set_chunk_malloc_max(png, 8u << 20);
  png_read_info(png, info);
  png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
  if (check_size(path, (long)w, (long)h)) {
    png_destroy_read_struct(&png, &info, NULL);
    return DPL_ERR_IO;
  }
  if (color == PNG_COLOR_TYPE_PALETTE) {
    png_set_palette_to_rgb(png);
    /* a palette with transparency becomes RGBA (Pillow's "P" with transparency converts to RGBA); a tRNS colour key on
       gray or RGB images is ignored, as Pillow keeps those in L / RGB mode */
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  }
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16) {
    const uint16_t probe = 1;
    if (*(const unsigned char *)&probe == 1) png_set_swap(png);   /* PNG is big-endian; store native uint16_t */
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  img->width = (int)w;
  img->height = (int)h;
  img->channels = png_get_channels(png, info);
  img->depth = png_get_bit_depth(png, info);
  size_t rowbytes = png_get_rowbytes(png, info);
  data = malloc(rowbytes * h);
  rows = malloc(sizeof(png_bytep) * h);
  if (!data || !rows) {
    free(data);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory for a %u x %u image", path, (unsigned)w, (unsigned)h);
  }
  for (png_uint_32 y = 0; y < h; y++) rows[y] = data + y * rowbytes;
  png_read_image(png, rows);
  png_read_end(png, NULL);   /* checks the CRCs up to IEND, so a file cut after the pixel data is still an error */
  free(rows);
  png_destroy_read_struct(&png, &info, NULL);
  img->data = data;
  return DPL_OK;
}

/* ---- JPEG --------------------------------------------------------------------------------------------------- */
typedef struct jpeg_ctx {
  struct jpeg_error_mgr mgr;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
} jpeg_ctx;

static void jpeg_on_error(j_common_ptr cinfo) {
  jpeg_ctx *ctx = (jpeg_ctx *)cinfo->err;
  cinfo->err->format_message(cinfo, ctx->message);
  longjmp(ctx->jump, 1);
}

/* libjpeg only warns when the compressed data ends early (end of file, or a marker in the middle of the scan) and
   pads the rest of the image; treat both as errors, since a truncated or corrupt file must not load silently (Pillow
   also refuses the first). Other warnings, e.g. extraneous bytes before a marker, are ignored, as Pillow does. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
  if (level < 0 && (cinfo->err->msg_code == JWRN_JPEG_EOF || cinfo->err->msg_code == JWRN_HIT_MARKER))
    jpeg_on_error(cinfo);
}

static void jpeg_on_progress(j_common_ptr cinfo) {
  if (cinfo->is_decompressor && ((j_decompress_ptr)cinfo)->input_scan_number > 500) {
    jpeg_ctx *ctx = (jpeg_ctx *)cinfo->err;
    snprintf(ctx->message, sizeof ctx->message, "more than 500 progressive scans");
    longjmp(ctx->jump, 1);
  }
}

static int read_jpeg(FILE *f, const char *path, raw_image *img) {
  struct jpeg_decompress_struct cinfo;
  jpeg_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  cinfo.err = jpeg_std_error(&ctx.mgr);
  ctx.mgr.error_exit = jpeg_on_error;
  ctx.mgr.emit_message = jpeg_on_message;
  unsigned char *volatile data = NULL;
  if (setjmp(ctx.jump)) {
    free(data);
    jpeg_destroy_decompress(&cinfo);
    return dpl_fail(DPL_ERR_IO, "%s: corrupt or truncated JPEG (%s)", path, ctx.message);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_stdio_src(&cinfo, f);
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&cinfo);
    return dpl_fail(DPL_ERR_UNSUPPORTED, "%s: CMYK JPEGs are not supported (convert to RGB first)", path);
  }
  /* from the header, before jpeg_start_decompress allocates: a progressive file's whole-image coefficient buffers
     are 2 bytes per sample (a 151-byte file declaring 32771 x 64517 asked for 4.1 GB there) */
  if (check_size(path, (long)cinfo.image_width, (long)cinfo.image_height)) {
    jpeg_destroy_decompress(&cinfo);
    return DPL_ERR_IO;
  }
  /* a progressive file may hold any number of scans, each a pass over the whole image: stop at libjpeg-turbo's own
     bound for untrusted input (TJFLAG_LIMITSCANS, 500) */
  struct jpeg_progress_mgr progress = {.progress_monitor = jpeg_on_progress};
  if (cinfo.progressive_mode) cinfo.progress = &progress;
  cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  img->width = (int)cinfo.output_width;
  img->height = (int)cinfo.output_height;
  img->channels = cinfo.output_components;
  img->depth = 8;
  size_t rowbytes = (size_t)img->width * (size_t)img->channels;
  data = malloc(rowbytes * (size_t)img->height);
  if (!data) {
    jpeg_destroy_decompress(&cinfo);
    return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = data + rowbytes * cinfo.output_scanline;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  img->data = data;
  return DPL_OK;
}

/* ---- TIFF --------------------------------------------------------------------------------------------------- */
/* libtiff reports through process-wide handlers; the message goes to a per-thread buffer that read_tiff reads. */
static _Thread_local char tiff_message[512];

static void tiff_on_error(const char *module, const char *fmt, va_list ap) {
  char msg[400];
  vsnprintf(msg, sizeof msg, fmt, ap);
  snprintf(tiff_message, sizeof tiff_message, "%s%s%s", module ? module : "", module ? ": " : "", msg);
}

static void tiff_on_warning(const char *module, const char *fmt, va_list ap) { (void)module; (void)fmt; (void)ap; }

/* Plain 8-bit stripped RGB/gray files (the Massachusetts Roads layout) are read scanline by scanline, exactly. Anything
   else goes through TIFFReadRGBAImage, which handles every photometric interpretation, bit depth, tiling and
   compression libtiff knows, at 8 bits, and premultiplies unassociated alpha (so only the direct path matches Pillow
   for RGBA); gray files are then reduced back to one channel. */
static int read_tiff_scanlines(TIFF *tif, const char *path, raw_image *img) {
  size_t rowbytes = (size_t)img->width * (size_t)img->channels;
  if ((size_t)TIFFScanlineSize(tif) != rowbytes) return dpl_fail(DPL_ERR_IO, "%s: unexpected TIFF scanline size", path);
  img->data = malloc(rowbytes * (size_t)img->height);
  if (!img->data) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
  for (int y = 0; y < img->height; y++)
    if (TIFFReadScanline(tif, img->data + rowbytes * (size_t)y, (uint32_t)y, 0) < 0) {
      free(img->data);
      img->data = NULL;
      return dpl_fail(DPL_ERR_IO, "%s: corrupt or truncated TIFF (%s)", path, tiff_message[0] ? tiff_message : "read failed");
    }
  return DPL_OK;
}

static int read_tiff(const char *path, raw_image *img) {
  TIFFSetErrorHandler(tiff_on_error);
  TIFFSetWarningHandler(tiff_on_warning);
  tiff_message[0] = 0;
  TIFF *tif = TIFFOpen(path, "r");
  if (!tif) return dpl_fail(DPL_ERR_IO, "%s: corrupt TIFF (%s)", path, tiff_message);
  uint32_t w = 0, h = 0;
  uint16_t spp = 1, bits = 1, planar = PLANARCONFIG_CONTIG, photometric = PHOTOMETRIC_RGB, extra_count = 0;
  uint16_t *extra = NULL;
  TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
  TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
  TIFFGetFieldDefaulted(tif, TIFFTAG_EXTRASAMPLES, &extra_count, &extra);
  if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric)) photometric = spp < 3 ? PHOTOMETRIC_MINISBLACK : PHOTOMETRIC_RGB;
  if (check_size(path, (long)w, (long)h)) { TIFFClose(tif); return DPL_ERR_IO; }
  int gray = photometric == PHOTOMETRIC_MINISBLACK || photometric == PHOTOMETRIC_MINISWHITE;
  int alpha = extra_count > 0 && (extra[0] == EXTRASAMPLE_ASSOCALPHA || extra[0] == EXTRASAMPLE_UNASSALPHA);
  img->width = (int)w;
  img->height = (int)h;
  img->channels = (gray ? 1 : 3) + alpha;
  img->depth = 8;
  if (bits == 8 && planar == PLANARCONFIG_CONTIG && !TIFFIsTiled(tif) && spp == img->channels &&
      (photometric == PHOTOMETRIC_MINISBLACK || photometric == PHOTOMETRIC_RGB)) {
    int rc = read_tiff_scanlines(tif, path, img);
    TIFFClose(tif);
    return rc;
  }
  uint32_t *raster = malloc((size_t)w * h * sizeof(uint32_t));
  if (!raster) { TIFFClose(tif); return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", path); }
  if (!TIFFReadRGBAImageOriented(tif, w, h, raster, ORIENTATION_TOPLEFT, 1)) {
    free(raster);
    TIFFClose(tif);
    return dpl_fail(DPL_ERR_IO, "%s: corrupt or truncated TIFF (%s)", path, tiff_message[0] ? tiff_message : "read failed");
  }
  TIFFClose(tif);
  unsigned char *data = malloc((size_t)w * h * (size_t)img->channels);
  if (!data) { free(raster); return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", path); }
  for (size_t i = 0; i < (size_t)w * h; i++) {
    uint32_t p = raster[i];
    unsigned char *o = data + i * (size_t)img->channels;
    if (gray) *o++ = (unsigned char)TIFFGetR(p);
    else { *o++ = (unsigned char)TIFFGetR(p); *o++ = (unsigned char)TIFFGetG(p); *o++ = (unsigned char)TIFFGetB(p); }
    if (alpha) *o = (unsigned char)TIFFGetA(p);
  }
  free(raster);
  img->data = data;
  return DPL_OK;
}

/* ---- conversion to a tensor ---------------------------------------------------------------------------------- */
static inline uint32_t sample(const raw_image *img, size_t i) {
  return img->depth == 16 ? ((const uint16_t *)img->data)[i] : img->data[i];
}

/* channels: 0 keeps the decoded channels, 1 gives luminance (Pillow's "L"), 3 gives RGB. */
static dpl_tensor *to_tensor(dpl_device *dev, const raw_image *img, int channels, const char *path) {
  int cin = img->channels;
  int cout = channels == 0 ? cin : channels;
  size_t plane = (size_t)img->width * (size_t)img->height;
  float *out = malloc(plane * (size_t)cout * sizeof(float));
  if (!out) {
    dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory for a %d x %d image", path, img->width, img->height);
    return NULL;
  }
  const float scale = img->depth == 16 ? 65535.0f : 255.0f;
  for (size_t i = 0; i < plane; i++) {
    size_t s = i * (size_t)cin;
    if (cout == cin) {
      for (int c = 0; c < cin; c++) out[c * plane + i] = (float)sample(img, s + c) / scale;
    } else if (cout == 3) {            /* from gray or gray+alpha (repeat), or RGBA (drop alpha) */
      for (int c = 0; c < 3; c++) out[c * plane + i] = (float)sample(img, s + (cin <= 2 ? 0 : c)) / scale;
    } else if (cin <= 2) {             /* gray+alpha -> gray */
      out[i] = (float)sample(img, s) / scale;
    } else {                           /* RGB(A) -> L, Pillow's integer formula */
      uint64_t l = (uint64_t)sample(img, s) * 19595u + (uint64_t)sample(img, s + 1) * 38470u +
                   (uint64_t)sample(img, s + 2) * 7471u + 0x8000u;
      out[i] = (float)(l >> 16) / scale;
    }
  }
  int64_t shape[3] = {cout, img->height, img->width};
  dpl_tensor *t = dpl_tensor_from_host(dev, 3, shape, out);
  free(out);
  if (!t && dpl_last_status() == DPL_ERR_OUT_OF_MEMORY)
    dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory for a %d x %d image", path, img->width, img->height);
  return t;
}

dpl_tensor *dpl_image_load(dpl_device *dev, const char *path, int channels) {
  if (!dev || !path) { dpl_fail(DPL_ERR_ARGUMENT, "dpl_image_load: NULL argument"); return NULL; }
  if (channels != 0 && channels != 1 && channels != 3) {
    dpl_fail(DPL_ERR_ARGUMENT, "dpl_image_load: channels must be 0 (keep), 1 (L) or 3 (RGB), got %d", channels);
    return NULL;
  }
  FILE *f = fopen(path, "rb");
  if (!f) { dpl_fail(DPL_ERR_IO, "%s: cannot open (%s)", path, strerror(errno)); return NULL; }
  unsigned char magic[8] = {0};
  size_t got = fread(magic, 1, sizeof magic, f);
  rewind(f);
  raw_image img = {0};
  int rc;
  if (got >= 8 && memcmp(magic, "\x89PNG\r\n\x1a\n", 8) == 0) {
    rc = read_png(f, path, &img);
  } else if (got >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF) {
    rc = read_jpeg(f, path, &img);
  } else if (got >= 4 && (memcmp(magic, "II*\0", 4) == 0 || memcmp(magic, "MM\0*", 4) == 0 ||
                          memcmp(magic, "II+\0", 4) == 0 || memcmp(magic, "MM\0+", 4) == 0)) {
    rc = read_tiff(path, &img);
  } else {
    rc = dpl_fail(DPL_ERR_IO, "%s: not a PNG, JPEG or TIFF file", path);
  }
  fclose(f);
  if (rc) return NULL;
  dpl_tensor *t = to_tensor(dev, &img, channels, path);
  free(img.data);
  return t;
}

/* ---- PNG writing ----------------------------------------------------------------------------------------------- */
static int write_png_file(FILE *f, const char *path, int w, int h, int c, const unsigned char *data) {
  png_ctx ctx = {.message = ""};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!info) {
    png_destroy_write_struct(&png, NULL);
    return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
  }
  if (setjmp(ctx.jump)) {
    png_destroy_write_struct(&png, &info);
    return dpl_fail(DPL_ERR_IO, "%s: PNG write failed (%s)", path, ctx.message);
  }
  static const int types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                               PNG_COLOR_TYPE_RGB_ALPHA};
  png_init_io(png, f);
  png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, types[c], PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < h; y++) png_write_row(png, data + (size_t)y * (size_t)w * (size_t)c);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  return DPL_OK;
}

int dpl_image_save(dpl_tensor *t, const char *path) {
  if (!t || !path) return dpl_fail(DPL_ERR_ARGUMENT, "dpl_image_save: NULL argument");
  int nd = dpl_tensor_ndim(t);
  int64_t shape[DPL_MAX_DIMS];
  for (int d = 0; d < nd; d++) shape[d] = dpl_tensor_size(t, d);
  char buf[128];
  int ok_shape = (nd == 3 || (nd == 4 && shape[0] == 1) || nd == 2);
  int64_t c = nd == 2 ? 1 : shape[nd - 3], h = shape[nd - 2], w = shape[nd - 1];
  if (!ok_shape || c < 1 || c > 4 || h < 1 || w < 1 || h > MAX_SIDE || w > MAX_SIDE)
    return dpl_fail(DPL_ERR_ARGUMENT, "dpl_image_save: %s: expected a C x H x W (or 1 x C x H x W or H x W) tensor "
                    "with C in 1..4, got %s", path, dpl_shape_str(buf, sizeof buf, nd, shape));
  size_t plane = (size_t)h * (size_t)w;
  float *vals = malloc(plane * (size_t)c * sizeof(float));
  unsigned char *pix = malloc(plane * (size_t)c);
  if (!vals || !pix) { free(vals); free(pix); return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", path); }
  int rc = dpl_tensor_to_host(t, vals);
  if (rc) { free(vals); free(pix); return rc; }
  /* torchvision.utils.save_image's rounding: floor(255 x + 0.5) after clamping to [0, 1]; NaN becomes 0 */
  for (size_t i = 0; i < plane; i++)
    for (int64_t k = 0; k < c; k++) {
      float v = vals[(size_t)k * plane + i];
      v = v > 1.0f ? 1.0f : (v >= 0.0f ? v : 0.0f);
      pix[i * (size_t)c + (size_t)k] = (unsigned char)(v * 255.0f + 0.5f);
    }
  free(vals);
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%.4000s.%d.tmp", path, (int)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) { free(pix); return dpl_fail(DPL_ERR_IO, "%s: cannot write (%s)", path, strerror(errno)); }
  rc = write_png_file(f, path, (int)w, (int)h, (int)c, pix);
  free(pix);
  if (fclose(f) != 0 && !rc) rc = dpl_fail(DPL_ERR_IO, "%s: write failed (%s)", path, strerror(errno));
  if (!rc && rename(tmp, path) != 0) rc = dpl_fail(DPL_ERR_IO, "%s: cannot rename into place (%s)", path, strerror(errno));
  if (rc) remove(tmp);
  return rc;
}
