// edgefleet pipeline run|diff|show|profile
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include "edgefleet/device_profile.h"
#include "edgefleet/model_card.h"
#include "edgefleet/pipeline_comparison.h"

namespace edgefleet::cli {
namespace {

struct PipelineArgs {
  std::string spec;
  std::string image;
  std::string out;
  std::string model;
  std::string data;
  std::string reference = default_reference_pipeline();
  std::vector<std::string> variants;
  std::vector<std::string> specs;
  std::string fleet;
  std::string group;
  int limit = 200;
  int threads = 0;
  bool markdown = false;
  std::string json_out;
};

// `pipeline` with its 'model' sizes bound to `model`'s input (unchanged when no model is given).
Expected<Pipeline> bound_to(const Pipeline& pipeline, const std::string& model) {
  if (model.empty()) return pipeline;
  auto card = resolve_model(model);
  if (!card) return card.status();
  return bind_to_input(pipeline, card->input);
}

Expected<Pipeline> pipeline_for(const std::string& spec, const std::string& model) {
  auto pipeline = parse_pipeline(spec);
  if (!pipeline) return pipeline;
  return bound_to(*pipeline, model);
}

int run_show(const PipelineArgs& args) {
  auto pipeline = parse_pipeline(args.spec);
  if (!pipeline) return fail(pipeline.status());
  std::cout << pipeline_to_string(*pipeline) << "\n" << pipeline_to_json(*pipeline).dump(1) << "\n";
  return 0;
}

int run_run(const PipelineArgs& args) {
  auto pipeline = pipeline_for(args.spec, args.model);
  if (!pipeline) return fail(pipeline.status());
  auto bytes = read_file_bytes(args.image);
  if (!bytes) return fail(bytes.status());
  auto image = run_pipeline(*pipeline, *bytes, args.image);
  if (!image) return fail(image.status());
  EncodeOptions png;
  png.format = ImageFormat::kPng;
  auto encoded = encode_image(*image, png);
  if (!encoded) return fail(encoded.status());
  std::ofstream out(args.out, std::ios::binary);
  out.write(reinterpret_cast<const char*>(encoded->data()), static_cast<std::streamsize>(encoded->size()));
  if (!out) return fail(io_error("cannot write '" + args.out + "'"));
  std::cout << args.out << ": " << image->width << "x" << image->height << "x" << image->channels << " after "
            << pipeline_to_string(*pipeline) << "\n";
  return 0;
}

int run_diff(const PipelineArgs& args) {
  auto reference = parse_pipeline(args.reference);
  if (!reference) return fail(reference.status());
  std::vector<PipelineVariant> variants;
  if (args.variants.empty()) {
    for (auto& v : builtin_stage_variants()) {
      if (args.group.empty() || v.group == args.group) variants.push_back(v);
    }
  } else {
    for (const auto& spec : args.variants) variants.push_back({"custom", spec});
  }
  if (variants.empty()) return fail(invalid_argument("no variants in group '" + args.group + "'"));
  auto files = list_image_files(args.data);
  if (!files) return fail(files.status());
  if (args.limit > 0 && files->size() > static_cast<std::size_t>(args.limit)) files->resize(args.limit);
  auto differences = compare_pipelines(*reference, variants, *files, args.threads);
  if (!differences) return fail(differences.status());

  std::vector<std::vector<std::string>> rows;
  nlohmann::json json = {{"reference", pipeline_to_string(*reference)}, {"files", files->size()}, {"variants", nlohmann::json::array()}};
  for (const auto& d : *differences) {
    const std::string identical = d.images ? fixed(100.0 * d.identical / d.images, 0) + "%" : "-";
    // In Markdown the pipeline's own '|' would split the cell.
    std::string spec = d.variant.spec;
    if (args.markdown) {
      std::string escaped;
      for (char c : spec) escaped += c == '|' ? std::string("\\|") : std::string(1, c);
      spec = "`" + escaped + "`";
    }
    rows.push_back({d.variant.group, spec, std::to_string(d.images), fixed(d.mean_abs_diff, 3),
                    fixed(d.worst_image_mad, 2), identical, std::to_string(d.failures + d.shape_mismatches)});
    json["variants"].push_back({{"group", d.variant.group}, {"spec", d.variant.spec}, {"images", d.images},
                                {"mean_abs_diff", d.mean_abs_diff}, {"worst_image_mad", d.worst_image_mad},
                                {"identical", d.identical}, {"failures", d.failures},
                                {"shape_mismatches", d.shape_mismatches}, {"first_error", d.first_error}});
  }
  const std::vector<std::string> header = {"stage", "variant pipeline", "images", "MAD", "worst MAD", "identical", "failed"};
  std::cout << "reference: " << pipeline_to_string(*reference) << " (" << files->size() << " files)\n";
  std::cout << (args.markdown ? format_markdown_table(header, rows) : format_table(header, rows));
  if (!args.json_out.empty()) {
    std::ofstream out(args.json_out);
    out << json.dump(1) << "\n";
    if (!out) return fail(io_error("cannot write '" + args.json_out + "'"));
  }
  for (const auto& d : *differences) {
    if (d.failures) std::cerr << "edgefleet: " << d.variant.spec << " failed on " << d.failures << " files: " << d.first_error << "\n";
  }
  return 0;
}

// One pipeline's time per stage, summed over the pictures.
struct StageTimes {
  std::string name;
  Pipeline pipeline;
  std::vector<double> seconds;
  int pictures = 0;
};

// Whether a resize or crop of `pipeline` takes its size from a model ("model").
bool sized_by_model(const Pipeline& pipeline) {
  for (const auto& stage : pipeline.stages) {
    if (const auto* r = std::get_if<ResizeStage>(&stage); r && r->options.size.from_model) return true;
    if (const auto* c = std::get_if<CropStage>(&stage); c && c->options.from_model) return true;
  }
  return false;
}

// Times every stage of every pipeline on each picture, one thread (a pipeline's cost as one
// stability-run worker pays it). A picture a pipeline fails on is an error: a profile of
// what did not run would mislead.
int run_profile(const PipelineArgs& args) {
  std::vector<StageTimes> profiles;
  for (const auto& spec : args.specs) {
    auto pipeline = pipeline_for(spec, args.model);
    if (!pipeline) return fail(pipeline.status());
    profiles.push_back({spec, *pipeline, {}, 0});
  }
  if (!args.fleet.empty()) {
    auto fleet = read_fleet(args.fleet);
    if (!fleet) return fail(fleet.status());
    for (const auto& device : *fleet) {
      auto pipeline = bound_to(device.environment.pipeline, args.model);
      if (!pipeline) return fail(pipeline.status());
      profiles.push_back({device.name, *pipeline, {}, 0});
    }
  }
  if (profiles.empty()) return fail(invalid_argument("pipeline profile: give a pipeline spec or --fleet"));
  for (auto& profile : profiles) {
    if (args.model.empty() && sized_by_model(profile.pipeline)) {
      return fail(invalid_argument("pipeline profile: " + profile.name + " sizes a stage by the model ('model'): give --model"));
    }
    // A pixel stage first decodes the file as decode:auto would: timed as its own stage.
    auto& stages = profile.pipeline.stages;
    if (!stages.empty() && !std::holds_alternative<DecodeStage>(stages.front())) stages.insert(stages.begin(), DecodeStage{});
  }
  auto files = list_image_files(args.data);
  if (!files) return fail(files.status());
  if (args.limit > 0 && files->size() > static_cast<std::size_t>(args.limit)) files->resize(args.limit);
  for (const auto& file : *files) {
    auto bytes = read_file_bytes(file);
    if (!bytes) return fail(bytes.status());
    for (auto& profile : profiles) {
      profile.seconds.resize(profile.pipeline.stages.size(), 0.0);
      Payload payload;
      payload.bytes = *bytes;
      for (std::size_t i = 0; i < profile.pipeline.stages.size(); ++i) {
        const auto start = std::chrono::steady_clock::now();
        auto next = apply_stage(profile.pipeline.stages[i], std::move(payload), file);
        profile.seconds[i] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (!next) return fail(next.status());
        payload = std::move(*next);
      }
      ++profile.pictures;
    }
  }
  std::vector<std::vector<std::string>> rows;
  nlohmann::json json = {{"files", files->size()}, {"pipelines", nlohmann::json::array()}};
  for (const auto& profile : profiles) {
    double total = 0;
    for (double s : profile.seconds) total += s;
    nlohmann::json stages = nlohmann::json::array();
    for (std::size_t i = 0; i < profile.seconds.size(); ++i) {
      const double ms = profile.pictures ? 1000.0 * profile.seconds[i] / profile.pictures : 0.0;
      const std::string stage = stage_to_string(profile.pipeline.stages[i]);
      rows.push_back({profile.name, stage.substr(0, stage.find(':')), fixed(ms, 1),
                      total > 0 ? fixed(100.0 * profile.seconds[i] / total, 0) + "%" : "-"});
      stages.push_back({{"stage", stage}, {"ms_per_picture", ms}});
    }
    const double total_ms = profile.pictures ? 1000.0 * total / profile.pictures : 0.0;
    rows.push_back({profile.name, "all", fixed(total_ms, 1), "100%"});
    json["pipelines"].push_back({{"name", profile.name}, {"pipeline", pipeline_to_string(profile.pipeline)},
                                 {"ms_per_picture", total_ms}, {"stages", stages}});
  }
  const std::vector<std::string> header = {"pipeline", "stage", "ms per picture", "share"};
  std::cout << files->size() << " pictures, one thread\n"
            << (args.markdown ? format_markdown_table(header, rows) : format_table(header, rows));
  if (!args.json_out.empty()) {
    std::ofstream out(args.json_out);
    out << json.dump(1) << "\n";
    if (!out) return fail(io_error("cannot write '" + args.json_out + "'"));
  }
  return 0;
}

}  // namespace

Runner add_pipeline_command(CLI::App& app) {
  auto args = std::make_shared<PipelineArgs>();
  auto* command = app.add_subcommand("pipeline", "Device image pipelines: check a spec, run one on a picture, compare variants");
  command->require_subcommand(1);
  auto* show = command->add_subcommand("show", "Parse a pipeline spec; print its canonical string and JSON");
  show->add_option("spec", args->spec, "Pipeline spec, e.g. 'decode:turbojpeg,dct=ifast|resize:opencv,linear,256'")->required();
  auto* run = command->add_subcommand("run", "Run a pipeline on one picture and write the result as PNG");
  run->add_option("spec", args->spec, "Pipeline spec")->required();
  run->add_option("--image", args->image, "Source picture")->required();
  run->add_option("--out", args->out, "Output PNG")->required();
  run->add_option("--model", args->model, "Model (card or built-in name) whose input size fills 'model' sizes");
  auto* diff = command->add_subcommand("diff", "Mean absolute pixel difference of variant pipelines against a reference");
  diff->add_option("--data", args->data, "Folder of source pictures (searched recursively)")->required();
  diff->add_option("--reference", args->reference, "Reference pipeline")->capture_default_str();
  diff->add_option("--variant", args->variants, "A variant pipeline (repeatable; default: the built-in stage variants)");
  diff->add_option("--group", args->group, "Only built-in variants of this stage: decode, codec, resize, crop, color, camera");
  diff->add_option("--limit", args->limit, "Use the first N files (sorted by path); 0 = all")->capture_default_str();
  diff->add_option("--threads", args->threads, "Worker threads (0 = one per core)")->capture_default_str();
  diff->add_flag("--markdown", args->markdown, "Print a Markdown table");
  diff->add_option("--json", args->json_out, "Also write the results to this JSON file");
  auto* profile = command->add_subcommand("profile", "Time each stage of pipelines (or a fleet's) on pictures, one thread");
  profile->add_option("spec", args->specs, "Pipeline specs (each profiled)");
  profile->add_option("--fleet", args->fleet, "Also every device's pipeline of this fleet (built-in name or folder)");
  profile->add_option("--data", args->data, "Folder of source pictures (searched recursively)")->required();
  profile->add_option("--limit", args->limit, "Use the first N files (sorted by path); 0 = all")->capture_default_str();
  profile->add_option("--model", args->model, "Model (card or built-in name) whose input size fills 'model' sizes");
  profile->add_flag("--markdown", args->markdown, "Print a Markdown table");
  profile->add_option("--json", args->json_out, "Also write the times to this JSON file");
  return [args, show, run, diff, profile] {
    if (show->parsed()) return run_show(*args);
    if (run->parsed()) return run_run(*args);
    if (diff->parsed()) return run_diff(*args);
    if (profile->parsed()) return run_profile(*args);
    return 2;
  };
}

}  // namespace edgefleet::cli
