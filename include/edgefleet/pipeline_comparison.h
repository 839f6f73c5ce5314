// Pipeline comparison: how far each variant pipeline's output is from a reference pipeline's
// on the same source files — the per-stage "how much does this knob move the pixels" table.
// Thread-safe; runs the files on a pool of threads.
#pragma once

#include <string>
#include <vector>

#include "edgefleet/pipeline.h"

namespace edgefleet {

struct PipelineVariant {
  std::string group;  // the stage kind it changes: decode, codec, resize, crop, color, camera
  std::string spec;
};

struct PipelineDifference {
  PipelineVariant variant;
  std::size_t images = 0;            // compared with the reference
  std::size_t failures = 0;          // the variant failed on these (first_error says why)
  std::size_t identical = 0;         // bit-identical to the reference
  std::size_t shape_mismatches = 0;  // output size differs from the reference's
  double mean_abs_diff = 0.0;        // per 8-bit sample, averaged over images
  double worst_image_mad = 0.0;
  std::string first_error;
};

// The reference the built-in variants change one stage of, and the variants themselves
// (every decoder and DCT, JPEG qualities and formats, every resizer filter, crop conventions,
// colour conversions, virtual-camera ISPs).
std::string default_reference_pipeline();
std::vector<PipelineVariant> builtin_stage_variants();

// Every image file (jpg, jpeg, png, webp, heic, heif, bmp, tif, tiff) under `dir`, sorted.
Expected<std::vector<std::string>> list_image_files(const std::string& dir);

// Runs the reference and every variant on each file and compares the final pixels. A file
// the reference cannot read is skipped (not counted). threads = 0: one per core.
Expected<std::vector<PipelineDifference>> compare_pipelines(const Pipeline& reference,
                                                            const std::vector<PipelineVariant>& variants,
                                                            const std::vector<std::string>& files, int threads = 0);

}  // namespace edgefleet
