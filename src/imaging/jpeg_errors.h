// Internal: libjpeg-turbo's error manager for the JPEG decoder and encoder. libjpeg reports a
// fatal error through error_exit, which must not return: it jumps back to the setjmp of the
// function that made the libjpeg call, with the message kept.
#pragma once

#include <csetjmp>
#include <cstdio>

#include <jpeglib.h>
#include <jerror.h>

namespace edgefleet::detail {

struct JpegErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {};
  bool truncated = false;  // decoding: libjpeg warned of a premature end of data
};

inline void jpeg_error_exit(j_common_ptr cinfo) {
  auto* errors = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, errors->message);
  std::longjmp(errors->jump, 1);
}

// Installs the manager on a compress or decompress struct (before jpeg_create_*).
inline jpeg_error_mgr* use_error_manager(JpegErrorManager* errors) {
  jpeg_error_mgr* pub = jpeg_std_error(&errors->pub);
  errors->pub.error_exit = jpeg_error_exit;
  return pub;
}

}  // namespace edgefleet::detail
