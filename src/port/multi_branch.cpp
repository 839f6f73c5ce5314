// Multi-branch models: tail-only pruning to each budget, fine-tuning on the frozen base,
// assembly into one TorchScript module, and the runtime that switches branches.
#include "edgefleet/multi_branch.h"

#include "core/atomic_file.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <thread>
#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/elapsed.h"
#include "core/median.h"
#include "core/thread_count.h"
#include "edgefleet/dataset.h"
#include "edgefleet/model_card.h"
#include "port/channel_pruning.h"
#include "zoo/training.h"
#include "zoo/module_builder.h"

namespace edgefleet {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The layer a tensor belongs to ("l12_w" -> 12); the head's tensors (emb_, fc_) count as
// after every layer.
std::size_t layer_of(const std::string& tensor, std::size_t layers) {
  if (tensor.size() > 1 && tensor[0] == 'l' && std::isdigit(static_cast<unsigned char>(tensor[1]))) {
    return static_cast<std::size_t>(std::stoul(tensor.substr(1)));
  }
  return layers;
}

// Groups every member of which lies in the tail: the ones a branch may narrow.
std::vector<std::string> tail_groups(const ArchSpec& spec, std::size_t base_layers) {
  std::vector<std::string> names;
  for (const auto& group : channel_groups(spec)) {
    if (!group.prunable) continue;
    const bool tail = std::all_of(group.members.begin(), group.members.end(),
                                  [&](const TensorSlice& m) { return layer_of(m.tensor, spec.layers.size()) >= base_layers; });
    if (tail) names.push_back(group.name);
  }
  return names;
}

std::map<std::string, int> tail_widths(const ArchSpec& spec, const std::vector<std::string>& groups, double ratio, int multiple) {
  const auto full = group_widths(spec);
  std::map<std::string, int> widths;
  for (const auto& g : groups) widths[g] = rounded_width(full.at(g) * ratio, full.at(g), multiple);
  return widths;
}

// The widest uniform narrowing of the tail whose whole model fits `budget_macs`.
std::map<std::string, int> widths_for_budget(const ArchSpec& spec, const std::vector<std::string>& groups, std::int64_t budget_macs, int multiple) {
  double lo = 0.0, hi = 1.0;
  if (arch_cost(spec).macs <= budget_macs) return tail_widths(spec, groups, 1.0, multiple);
  for (int i = 0; i < 30; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (arch_cost(spec_with_widths(spec, tail_widths(spec, groups, mid, multiple)).value()).macs <= budget_macs) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return tail_widths(spec, groups, lo, multiple);
}

void copy_base(const torch::jit::Module& from, torch::jit::Module& to, std::size_t base_layers, std::size_t layers) {
  torch::NoGradGuard no_grad;
  for (const auto& t : from.named_parameters()) {
    if (layer_of(t.name, layers) < base_layers) to.attr(t.name).toTensor().copy_(t.value);
  }
  for (const auto& t : from.named_buffers()) {
    if (layer_of(t.name, layers) < base_layers) to.attr(t.name).toTensor().copy_(t.value);
  }
}

}  // namespace

Expected<MultiBranchBuild> build_multi_branch(const MultiBranchOptions& options, const std::string& out_file) {
  return capture([&]() -> MultiBranchBuild {
    if (options.budgets.empty()) throw Error(invalid_argument("a multi-branch model needs at least one budget"));
    for (double b : options.budgets) {
      if (!(b > 0 && b <= 1)) throw Error(invalid_argument("budgets are fractions of the source's MACs, in (0, 1]"));
    }
    torch::set_num_threads(resolve_thread_count(options.threads));
    const ModelCard card = resolve_model(options.source_model).value();
    PrunableModel source;
    source.module = torch::jit::load(card.model_path());
    auto spec = arch_spec_of(source.module);
    if (!spec) throw Error(unsupported(card.name + ": a multi-branch model needs a zoo model (with an ArchSpec)"));
    source.spec = *spec;
    source.module.eval();
    const std::size_t layers = source.spec.layers.size();
    if (options.base_layers < 1) throw Error(invalid_argument("base_layers must be at least 1"));
    const auto base_layers = static_cast<std::size_t>(options.base_layers);
    if (base_layers >= layers) throw Error(invalid_argument("base_layers must leave at least one layer to the branches (the source has " + std::to_string(layers) + ")"));
    const auto groups = tail_groups(source.spec, base_layers);
    if (groups.empty()) throw Error(invalid_argument("no channel group lies wholly after layer " + std::to_string(base_layers) + ": nothing for branches to narrow"));

    auto train_set = open_fashion_mnist(FashionMnistSplit::kTrain).value();
    auto test_set = open_fashion_mnist(FashionMnistSplit::kTest).value();
    std::vector<std::size_t> train_items(std::min(options.train_images, train_set->size())), eval_items(std::min(options.eval_images, test_set->size()));
    for (std::size_t i = 0; i < train_items.size(); ++i) train_items[i] = i;
    for (std::size_t i = 0; i < eval_items.size(); ++i) eval_items[i] = i;
    const TrainingData train = raw_images(*train_set, train_items, source.spec.in_channels, source.spec.input_size);
    const TrainingData eval = raw_images(*test_set, eval_items, source.spec.in_channels, source.spec.input_size);

    std::set<std::string> frozen;
    for (const auto& p : source.module.named_parameters()) {
      if (layer_of(p.name, layers) < base_layers) frozen.insert(p.name);
    }
    const std::int64_t source_macs = arch_cost(source.spec).macs;
    const auto saliency = channel_saliency(source);

    MultiBranchBuild build;
    build.model_file = out_file;
    torch::jit::Module multi("edgefleet.multibranch");
    multi.register_attribute("training", c10::BoolType::get(), false);
    multi.register_attribute("active", c10::IntType::get(), static_cast<std::int64_t>(options.budgets.size() / 2));
    multi.register_attribute("arch_json", c10::StringType::get(), json(source.spec).dump());
    for (const auto& p : source.module.named_parameters()) {
      if (layer_of(p.name, layers) < base_layers) {
        multi.register_parameter(p.name, p.value.detach().clone(), false);
        build.base_params += p.value.numel();
      }
    }
    for (const auto& b : source.module.named_buffers()) {
      if (layer_of(b.name, layers) < base_layers) multi.register_buffer(b.name, b.value.detach().clone());
    }
    const SplitSource base_source = split_source(source.spec, base_layers, "");
    std::ostringstream code;
    code << "def base(self, x):\n" << base_source.base << "    return x\n\n";
    build.total_params = build.base_params;
    const fs::path stem = fs::path(out_file).parent_path() / fs::path(out_file).stem();
    if (!fs::path(out_file).parent_path().empty()) fs::create_directories(fs::path(out_file).parent_path());

    for (std::size_t j = 0; j < options.budgets.size(); ++j) {
      const auto widths = widths_for_budget(source.spec, groups, static_cast<std::int64_t>(options.budgets[j] * static_cast<double>(source_macs)),
                                            options.channel_multiple);
      PrunableModel branch = prune_channels(source, top_channels(saliency, widths)).value();
      train_steps(branch.module, train, options.finetune, options.seed + j, teacher_of(source.module, options.finetune.temperature), frozen);
      copy_base(source.module, branch.module, base_layers, layers);  // running statistics moved while tuning
      const std::string prefix = "b" + std::to_string(j) + "_";
      for (const auto& p : branch.module.named_parameters()) {
        if (layer_of(p.name, layers) >= base_layers) {
          multi.register_parameter(prefix + p.name, p.value.detach().clone(), false);
          build.total_params += p.value.numel();
        }
      }
      for (const auto& b : branch.module.named_buffers()) {
        if (layer_of(b.name, layers) >= base_layers) multi.register_buffer(prefix + b.name, b.value.detach().clone());
      }
      code << "def branch_" << j << "(self, x):\n" << split_source(branch.spec, base_layers, prefix).tail << "\n";
      BranchInfo info;
      info.index = static_cast<int>(j);
      info.budget = options.budgets[j];
      const ArchCost cost = arch_cost(branch.spec);
      info.macs = cost.macs;
      info.budget_met = cost.macs <= static_cast<std::int64_t>(options.budgets[j] * static_cast<double>(source_macs));
      info.params = cost.params;
      info.accuracy = top1_accuracy(branch.module, eval);
      info.standalone = (stem.string() + ".branch" + std::to_string(j) + ".pt");
      branch.module.save(info.standalone);
      build.branches.push_back(info);
    }
    code << "def forward(self, x):\n    y = self.base(x)\n";
    for (std::size_t j = 0; j + 1 < options.budgets.size(); ++j) code << "    if self.active == " << j << ":\n        return self.branch_" << j << "(y)\n";
    code << "    return self.branch_" << options.budgets.size() - 1 << "(y)\n";
    json infos = json::array();
    for (const auto& b : build.branches) {
      infos.push_back({{"index", b.index}, {"budget", b.budget}, {"budget_met", b.budget_met}, {"macs", b.macs}, {"params", b.params}, {"accuracy", b.accuracy},
                       {"standalone", fs::path(b.standalone).filename().string()}});
    }
    multi.register_attribute("branches_json", c10::StringType::get(), infos.dump());
    multi.define(code.str());
    replace_atomically(out_file, [&](const std::string& tmp) { multi.save(tmp); });
    return build;
  });
}

struct MultiBranchModel::Impl {
  torch::jit::Module module;
  std::vector<torch::jit::Method> methods;  // base, then branch_0 .. branch_{k-1}
  std::vector<BranchInfo> branches;
  ArchSpec spec;
};

MultiBranchModel::MultiBranchModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MultiBranchModel::~MultiBranchModel() = default;

Expected<std::unique_ptr<MultiBranchModel>> MultiBranchModel::load(const std::string& path) {
  if (!fs::exists(path)) return not_found(path + ": no such multi-branch model");
  auto impl = std::make_unique<Impl>();
  try {
    impl->module = torch::jit::load(path);
  } catch (const std::exception& e) {
    return corrupt(path + ": not a TorchScript model");
  }
  impl->module.eval();
  if (!impl->module.hasattr("branches_json") || !impl->module.hasattr("active")) return invalid_argument(path + ": not a multi-branch model (no branches_json)");
  auto spec = arch_spec_of(impl->module);
  if (!spec) return spec.status();
  impl->spec = *spec;
  const json infos = json::parse(impl->module.attr("branches_json").toStringRef(), nullptr, false);
  if (!infos.is_array() || infos.empty()) return corrupt(path + ": branches_json is not a list of branches");
  for (const auto& b : infos) {
    BranchInfo info;
    info.index = b.value("index", 0);
    info.budget = b.value("budget", 0.0);
    info.budget_met = b.value("budget_met", true);
    info.macs = b.value("macs", std::int64_t{0});
    info.params = b.value("params", std::int64_t{0});
    info.accuracy = b.value("accuracy", 0.0);
    info.standalone = (fs::path(path).parent_path() / b.value("standalone", std::string())).string();
    if (!impl->module.find_method("branch_" + std::to_string(impl->branches.size()))) return corrupt(path + ": a listed branch has no method");
    impl->branches.push_back(info);
  }
  impl->methods.push_back(impl->module.get_method("base"));
  for (std::size_t j = 0; j < impl->branches.size(); ++j) impl->methods.push_back(impl->module.get_method("branch_" + std::to_string(j)));
  const int active = static_cast<int>(impl->module.attr("active").toInt());
  std::unique_ptr<MultiBranchModel> model(new MultiBranchModel(std::move(impl)));
  model->active_.store(std::clamp(active, 0, model->branch_count() - 1));
  return model;
}

int MultiBranchModel::branch_count() const { return static_cast<int>(impl_->branches.size()); }
const std::vector<BranchInfo>& MultiBranchModel::branches() const { return impl_->branches; }
int MultiBranchModel::channels() const { return impl_->spec.in_channels; }
int MultiBranchModel::input_size() const { return impl_->spec.input_size; }
int MultiBranchModel::classes() const { return impl_->spec.classes; }

Status MultiBranchModel::switch_to(int branch) {
  if (branch < 0 || branch >= branch_count()) return invalid_argument("branch " + std::to_string(branch) + " out of range (0.." + std::to_string(branch_count() - 1) + ")");
  active_.store(branch, std::memory_order_release);
  return Status::ok();
}

Expected<std::vector<float>> MultiBranchModel::infer(const float* batch, int n) {
  if (n < 1) return invalid_argument("batch size must be positive");
  const int branch = active();
  try {
    torch::InferenceMode guard;
    const auto x = torch::from_blob(const_cast<float*>(batch), {n, channels(), input_size(), input_size()}, torch::kFloat32);
    const auto features = impl_->methods[0]({x}).toTensor();
    const auto logits = impl_->methods[static_cast<std::size_t>(branch) + 1]({features}).toTensor().contiguous();
    return std::vector<float>(logits.data_ptr<float>(), logits.data_ptr<float>() + logits.numel());
  } catch (const std::exception& e) {
    return internal_error(std::string("multi-branch inference failed: ") + e.what());
  }
}

Expected<SwitchLoadResult> run_switch_load(const std::string& multi_branch_file, const std::vector<float>& images, const SwitchLoadOptions& options) {
  auto loaded = MultiBranchModel::load(multi_branch_file);
  if (!loaded) return loaded.status();
  MultiBranchModel& model = **loaded;
  const std::size_t per_image = static_cast<std::size_t>(model.channels()) * model.input_size() * model.input_size();
  if (images.empty() || images.size() % per_image != 0) return invalid_argument("images must be whole " + std::to_string(per_image) + "-float images");
  if (options.clients < 1 || !(options.seconds > 0) || !(options.switch_every_ms > 0)) return invalid_argument("clients, seconds and switch interval must be positive");
  const std::size_t count = images.size() / per_image;
  torch::set_num_threads(1);
  const int k = model.branch_count();

  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> switch_epoch{0};
  std::mutex merge;
  SwitchLoadResult result;
  std::vector<std::vector<double>> per_branch(static_cast<std::size_t>(k));
  std::vector<double> first_after, steady, switch_us;
  std::vector<std::thread> clients;
  for (int c = 0; c < options.clients; ++c) {
    clients.emplace_back([&, c] {
      torch::set_num_threads(1);  // per thread under OpenMP
      std::vector<std::vector<double>> mine(static_cast<std::size_t>(k));
      std::vector<double> my_first, my_steady;
      std::int64_t requests = 0, failed = 0, seen_epoch = switch_epoch.load();
      for (std::size_t i = static_cast<std::size_t>(c); !stop.load(); i = (i + 1) % count) {
        const int branch = model.active();
        const std::int64_t epoch = switch_epoch.load();
        const auto started = std::chrono::steady_clock::now();
        auto logits = model.infer(images.data() + i * per_image, 1);
        const double ms = ms_since(started);
        ++requests;
        const bool ok = logits && static_cast<int>(logits->size()) == model.classes() &&
                        std::all_of(logits->begin(), logits->end(), [](float v) { return std::isfinite(v); });
        if (!ok) {
          ++failed;
          continue;
        }
        mine[static_cast<std::size_t>(branch)].push_back(ms);
        (epoch != seen_epoch ? my_first : my_steady).push_back(ms);
        seen_epoch = epoch;
      }
      std::lock_guard<std::mutex> lock(merge);
      result.requests += requests;
      result.failed += failed;
      for (int b = 0; b < k; ++b) per_branch[static_cast<std::size_t>(b)].insert(per_branch[static_cast<std::size_t>(b)].end(), mine[static_cast<std::size_t>(b)].begin(), mine[static_cast<std::size_t>(b)].end());
      first_after.insert(first_after.end(), my_first.begin(), my_first.end());
      steady.insert(steady.end(), my_steady.begin(), my_steady.end());
    });
  }
  const auto run_start = std::chrono::steady_clock::now();
  while (ms_since(run_start) < options.seconds * 1000) {
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(options.switch_every_ms));
    const auto t = std::chrono::steady_clock::now();
    const Status switched = model.switch_to((model.active() + 1) % k);
    switch_us.push_back(ms_since(t) * 1000);
    if (!switched.is_ok()) return switched;
    ++switch_epoch;
    ++result.switches;
  }
  stop = true;
  for (auto& t : clients) t.join();
  result.switch_median_us = median_of(switch_us);
  result.switch_max_us = switch_us.empty() ? 0.0 : *std::max_element(switch_us.begin(), switch_us.end());
  result.first_after_switch_ms = median_of(first_after);
  result.steady_ms = median_of(steady);
  for (const auto& v : per_branch) result.branch_latency_ms.push_back(median_of(v));

  // What a runtime without branches pays to change models: load a file and run it once.
  const auto x = torch::from_blob(const_cast<float*>(images.data()), {1, model.channels(), model.input_size(), model.input_size()}).clone();
  for (const auto& branch : model.branches()) {
    std::vector<double> times;
    for (int r = 0; r < options.reload_repeats; ++r) {
      const auto started = std::chrono::steady_clock::now();
      try {
        auto module = torch::jit::load(branch.standalone);
        module.eval();
        torch::InferenceMode guard;
        module.forward({x});
      } catch (const std::exception& e) {
        return io_error(branch.standalone + ": cannot load the standalone branch (" + e.what() + ")");
      }
      times.push_back(ms_since(started));
    }
    result.reload_ms.push_back(median_of(times));
  }
  std::int64_t base_params = 0, tails = 0;
  for (const auto& p : torch::jit::load(multi_branch_file).named_parameters()) {
    (p.name.size() > 1 && p.name[0] == 'b' && std::isdigit(static_cast<unsigned char>(p.name[1])) ? tails : base_params) += p.value.numel();
  }
  result.total_params = base_params + tails;
  result.middle_params = model.branches()[static_cast<std::size_t>(k / 2)].params;
  return result;
}

}  // namespace edgefleet
