// source.h: reads an H.264 or HEVC video stream from a file (mp4, mkv, ts, or an Annex B
// elementary stream) with libavformat and hands out its access units in Annex B form, converted
// by FFmpeg's h264_mp4toannexb / hevc_mp4toannexb bitstream filters (which pass Annex B input
// through unchanged). This is the only module of cuframes-video that touches FFmpeg.
#ifndef CUFRAMES_VIDEO_SOURCE_H_
#define CUFRAMES_VIDEO_SOURCE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "annexb.h"

namespace cuframes::video {

// Timestamps are rescaled to this clock: 90 kHz, the MPEG system clock (and the clock of the
// reference adapters' nominal packet pts).
inline constexpr int64_t kPtsHz = 90000;
// A timestamp the container does not know.
inline constexpr int64_t kNoPts = INT64_MIN;

struct AccessUnit {
  std::vector<uint8_t> data;  // Annex B
  int64_t pts = kNoPts;       // 90 kHz
  int64_t dts = kNoPts;       // 90 kHz
  bool keyframe = false;      // the demuxer's key flag (a random access point)
};

class Source {
 public:
  Source();
  ~Source();
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  // Opens `path` and selects its best video stream. Returns an empty string on success, else a
  // one-line description of what went wrong (file unreadable, no video stream, a codec other
  // than H.264/HEVC, a bitstream filter that fails to start). *unsupported is set when the
  // failure is an unsupported codec.
  std::string Open(const std::string& path, bool* unsupported);

  Codec codec() const;
  int width() const;
  int height() const;
  // The stream's parameter sets from its extradata in the form of annexb.h; empty when the
  // extradata carries none (they then come in band, with the first keyframe).
  const std::vector<uint8_t>& initial_params() const;

  // Reads the next access unit. Returns 1 with *out filled, 0 at the end of the stream, or -1
  // after a read or filter error (then *error says which).
  int Next(AccessUnit* out, std::string* error);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cuframes::video

#endif  // CUFRAMES_VIDEO_SOURCE_H_
