#include "port/channel_graph.h"

#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "model/torchscript_graph.h"

namespace edgefleet {

using torch::jit::Graph;
using torch::jit::Module;
using torch::jit::Node;
using torch::jit::Value;

namespace {

Status refused(const Node* node, const std::string& why) {
  return unsupported("channel analysis: operation " + graph_node_location(node) + " " + why + "; the graph cannot be pruned");
}

std::int64_t product(const std::vector<std::int64_t>& sizes, std::size_t from) {
  std::int64_t p = 1;
  for (std::size_t i = from; i < sizes.size(); ++i) p *= sizes[i];
  return p;
}

// "features.3.conv.0.weight" -> "features.3.conv.0"; a top-level "fc_w" names itself.
std::string module_of(const std::string& parameter) {
  const auto dot = parameter.rfind('.');
  return dot == std::string::npos ? parameter : parameter.substr(0, dot);
}

// Ids tied together by the graph.
struct UnionFind {
  std::vector<int> parent;
  int make() {
    parent.push_back(static_cast<int>(parent.size()));
    return parent.back();
  }
  int find(int x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  }
  void unite(int a, int b) {
    a = find(a);
    b = find(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);
  }
};

// A parameter's dimension whose index i belongs to channel id ids[i].
struct ParamUse {
  std::string path;
  int dim = 0;
  std::vector<int> ids;
};

// A conv or linear layer, for the cost.
struct CostLayer {
  std::string name;
  std::string weight;
  bool linear = false;
  bool depthwise = false;
  std::int64_t kernel_area = 1;
  std::int64_t in_positions = 1;   // spatial positions of the input (1 for linear)
  std::int64_t out_positions = 1;
  std::vector<int> in_ids, out_ids;
  // Where a removed input channel's mean contribution is folded: the layer's bias, else the
  // running mean of the batch norm that reads its output directly ("" when neither).
  std::string bias, next_running_mean;
  torch::Tensor input_mean;  // per input index (weight dim 1), on the probe batch
  torch::Tensor input_std;   // the same inputs' standard deviation (over batch and positions)
};

struct BatchNormUse {
  std::string weight, running_var;
  double eps = 1e-5;
  std::vector<int> ids;
};

}  // namespace

struct ChannelGraph::Impl {
  Module module;  // a clone whose forward is inlined: what prune() clones and edits
  std::vector<std::int64_t> input_shape;
  torch::Tensor probe;  // undefined: uniform noise
  std::vector<GraphChannelGroup> groups;
  std::vector<int> group_of_class;           // per class (root id), its group; -1 for non-roots
  std::vector<int> index_in_group;           // per class, its position in the group
  std::vector<int> root;                     // per id, its class
  std::map<std::string, std::vector<ParamUse>> uses;  // by parameter path
  std::vector<CostLayer> layers;
  std::vector<BatchNormUse> batch_norms;
  std::vector<std::pair<std::size_t, std::vector<int>>> depthwise;  // top-level node index, its channel ids
  std::map<std::string, torch::Tensor> parameters;  // every parameter or buffer the analysed ops read, by path
  std::map<std::string, std::vector<std::int64_t>> parameter_sizes;  // every trainable parameter of the module
  std::vector<KernelUse> kernels;
};

namespace {

// Reads the graph once, builds ids, uses, layers. Throws Error.
class Analysis {
 public:
  Analysis(Module module, std::vector<std::int64_t> input_shape, torch::Tensor probe) {
    impl_.module = std::move(module);
    impl_.input_shape = std::move(input_shape);
    impl_.probe = std::move(probe);
  }

  ChannelGraph::Impl run() {
    graph_ = impl_.module.get_method("forward").graph();
    torch::jit::Inline(*graph_);
    specialise_flags(graph_->block());
    torch::jit::ConstantPropagation(graph_);
    torch::jit::EliminateDeadCode(graph_);
    if (graph_->inputs().size() != 2) throw Error(invalid_argument("channel analysis: forward must take one input tensor"));
    for (const auto& p : impl_.module.named_parameters(/*recurse=*/true)) impl_.parameter_sizes[p.name] = p.value.sizes().vec();
    probe_shapes();
    const Value* input = graph_->inputs()[1];
    const auto& in_shape = shape(input);
    if (in_shape.size() < 2) throw Error(invalid_argument("channel analysis: the input has no channel dimension"));
    act_[input] = fresh(in_shape[1], /*fixed=*/true);
    std::size_t index = 0;
    for (Node* node : graph_->nodes()) visit(node, index++);
    const Value* out = graph_->outputs().at(0);
    if (graph_->outputs().size() != 1 || !act_.count(out)) {
      throw Error(unsupported("channel analysis: forward must return one logits tensor computed from its input"));
    }
    for (int id : act_.at(out)) fixed_.insert(id);
    check_parameter_uses();
    build_groups();
    return std::move(impl_);
  }

 private:
  // Runs a copy of the graph that returns every top-level tensor, to learn each one's shape.
  void probe_shapes() {
    std::vector<const Value*> originals;
    originals.push_back(graph_->inputs()[1]);
    for (Node* node : graph_->nodes()) {
      for (Value* v : node->outputs()) {
        if (v->type()->cast<c10::TensorType>()) originals.push_back(v);
      }
    }
    Module m = impl_.module;
    const bool was_training = m.is_training();
    m.eval();
    std::vector<c10::IValue> elements;
    // A batch of probes gives each channel's mean; a model that runs only at the given batch
    // size (sizes written into its program) is probed at that size.
    const std::int64_t given = impl_.probe.defined() ? impl_.probe.size(0) : kProbeBatch;
    for (const std::int64_t n : {given, impl_.input_shape[0]}) {
      try {
        torch::NoGradGuard no_grad;
        std::vector<std::int64_t> batch = impl_.input_shape;
        batch[0] = n;
        torch::manual_seed(0);
        const torch::Tensor input = impl_.probe.defined() ? impl_.probe.slice(0, 0, n) : torch::rand(batch);
        elements = probe_graph_values(graph_, m._ivalue(), input, originals);
        probe_batch_ = n;
        break;
      } catch (const std::exception& e) {
        if (n != impl_.input_shape[0]) continue;
        m.train(was_training);
        throw Error(invalid_argument(std::string("channel analysis: the model does not run on its input shape: ") + e.what()));
      }
    }
    m.train(was_training);
    for (std::size_t i = 0; i < originals.size(); ++i) {
      if (!elements[i].isTensor()) continue;
      const auto& t = elements[i].toTensor();
      auto sizes = t.sizes().vec();
      if (!sizes.empty() && sizes[0] == probe_batch_) sizes[0] = impl_.input_shape[0];
      shapes_[originals[i]] = sizes;
      if (t.dim() >= 2 && t.is_floating_point()) {
        std::vector<std::int64_t> dims = {0};
        for (std::int64_t d = 2; d < t.dim(); ++d) dims.push_back(d);
        means_[originals[i]] = t.mean(dims).to(torch::kFloat);
        stds_[originals[i]] = t.to(torch::kFloat).var(dims, /*unbiased=*/false).sqrt();
      }
    }
  }

  const std::vector<std::int64_t>& shape(const Value* v) const {
    auto it = shapes_.find(v);
    if (it == shapes_.end()) throw Error(unsupported("channel analysis: no shape for value %" + v->debugName()));
    return it->second;
  }

  std::vector<int> fresh(std::int64_t count, bool fixed = false) {
    std::vector<int> ids(static_cast<std::size_t>(count));
    for (auto& id : ids) {
      id = uf_.make();
      if (fixed) fixed_.insert(id);
    }
    return ids;
  }

  void tie(const std::vector<int>& a, const std::vector<int>& b, const Node* node) {
    if (a.size() != b.size()) throw Error(refused(node, "joins " + std::to_string(a.size()) + " and " + std::to_string(b.size()) + " channels"));
    for (std::size_t i = 0; i < a.size(); ++i) uf_.unite(a[i], b[i]);
  }

  // The attribute a prim::GetAttr chain from self reads, and its dotted path, when it is one.
  struct Attribute {
    std::string path;
    c10::IValue value;
  };
  std::optional<Attribute> attribute_of(const Value* v) const {
    std::vector<std::string> names;
    const Value* cur = v;
    while (cur->node()->kind() == c10::prim::GetAttr) {
      names.push_back(cur->node()->s(c10::attr::name));
      cur = cur->node()->input(0);
    }
    if (names.empty() || cur != graph_->inputs()[0]) return std::nullopt;
    Attribute out{"", impl_.module._ivalue()};
    for (auto it = names.rbegin(); it != names.rend(); ++it) {
      if (!out.value.isObject()) return std::nullopt;
      out.value = out.value.toObjectRef().getAttr(*it);
      out.path += (out.path.empty() ? "" : ".") + *it;
    }
    return out;
  }

  // Settings held as attributes (a block's use_res_connect, an activation's name, a kernel
  // size), other than `training`, become constants, so that the branches they choose are the
  // graph: the pruned model keeps the source's choices.
  void specialise_flags(torch::jit::Block* block) {
    for (Node* node : block->nodes()) {
      for (auto* sub : node->blocks()) specialise_flags(sub);
      if (node->kind() != c10::prim::GetAttr || node->s(c10::attr::name) == "training") continue;
      const auto kind = node->output()->type()->kind();
      if (kind != c10::TypeKind::BoolType && kind != c10::TypeKind::IntType && kind != c10::TypeKind::FloatType &&
          kind != c10::TypeKind::StringType) {
        continue;
      }
      auto attribute = attribute_of(node->output());
      if (!attribute) continue;
      const c10::IValue& value = attribute->value;
      if (!(value.isBool() || value.isInt() || value.isDouble() || value.isString())) continue;
      torch::jit::WithInsertPoint guard(node);
      node->output()->replaceAllUsesWith(graph_->insertConstant(value));
    }
  }

  // An Optional[Tensor] attribute holding None (a conv without bias).
  bool attribute_is_none(const Value* v) const {
    auto attribute = attribute_of(v);
    return attribute && attribute->value.isNone();
  }

  // The module attribute path a value reads ("features.1.conv.0.weight"), when it is a tensor
  // attribute reached by prim::GetAttr from self.
  std::optional<std::string> parameter_path(const Value* v) {
    auto attribute = attribute_of(v);
    if (!attribute) return std::nullopt;
    const std::string& path = attribute->path;
    const c10::IValue& object = attribute->value;
    if (!object.isTensor()) return std::nullopt;
    impl_.parameters.emplace(path, object.toTensor());
    readers_[path].push_back(v);
    return path;
  }

  void use(const std::string& path, int dim, const std::vector<int>& ids, const Node* node) {
    const auto& t = impl_.parameters.at(path);
    if (dim >= t.dim() || t.size(dim) != static_cast<std::int64_t>(ids.size())) {
      throw Error(refused(node, "reads " + path + " with a shape that does not match its channels"));
    }
    for (auto& u : impl_.uses[path]) {
      if (u.dim == dim) {
        tie(u.ids, ids, node);
        return;
      }
    }
    impl_.uses[path].push_back({path, dim, ids});
  }

  // A parameter input of a known operation: a tensor attribute, or absent (None).
  std::optional<std::string> parameter_input(const Node* node, std::size_t i) {
    const Value* v = node->input(i);
    if (graph_value_is_none(v) || attribute_is_none(v)) return std::nullopt;
    auto path = parameter_path(v);
    if (!path) throw Error(refused(node, "takes a computed tensor where a parameter was expected"));
    return path;
  }

  bool is_activation(const Value* v) const { return act_.count(v) > 0; }

  std::int64_t elements(const Value* v) const { return product(shape(v), 0); }

  void record(const std::string& kind, const Node* node) {
    KernelUse k;
    k.kind = kind;
    const Value* in = shapes_.count(node->input(0)) ? node->input(0) : node->outputs()[0];
    const Value* out = node->outputs()[0];
    k.input_elements = elements(in);
    k.output_elements = elements(out);
    // A concatenation's output ids cover all its inputs: its input is counted as its output.
    if (act_.count(out)) {
      k.out_ids = act_.at(out);
      k.out_positions = k.output_elements / std::max<std::int64_t>(1, static_cast<std::int64_t>(k.out_ids.size()));
      const bool one_input = kind != "concat" && act_.count(in);
      k.in_ids = one_input ? act_.at(in) : k.out_ids;
      k.in_positions = (one_input ? k.input_elements : k.output_elements) / std::max<std::int64_t>(1, static_cast<std::int64_t>(k.in_ids.size()));
    }
    impl_.kernels.push_back(k);
  }
  bool touches_activation(const Node* node) const {
    for (const Value* v : node->inputs()) {
      if (is_activation(v) || lists_.count(v) || parts_.count(v)) return true;
    }
    return false;
  }

  // Sub-blocks (prim::If, prim::Loop) may ask an activation's shape, nothing else.
  void check_block(const torch::jit::Block* block) {
    for (const Node* node : block->nodes()) {
      if (touches_activation(node)) {
        const auto kind = node->kind();
        const bool shape_query = kind == c10::aten::dim || (kind == c10::aten::size && node->inputs().size() == 1);
        if (!shape_query) throw Error(refused(node, "uses an activation inside control flow"));
      }
      for (const auto* sub : node->blocks()) check_block(sub);
    }
  }

  int normalised_dim(std::int64_t dim, std::size_t rank) const {
    return static_cast<int>(dim < 0 ? dim + static_cast<std::int64_t>(rank) : dim);
  }

  void visit(Node* node, std::size_t index) {
    for (const auto* block : node->blocks()) check_block(block);
    if (!touches_activation(node)) return;
    const auto kind = node->kind();
    recognised_.insert(node);
    if (kind == c10::prim::If || kind == c10::prim::Loop) throw Error(refused(node, "makes an activation depend on control flow"));
    if (kind == c10::aten::conv2d || kind == c10::aten::_convolution || kind == c10::aten::conv1d) return convolution(node, index);
    if (kind == c10::aten::batch_norm) return batch_norm(node);
    if (kind == c10::aten::linear) return linear(node);
    if (is_elementwise_binary(kind)) return binary(node);
    if (is_channelwise_unary(kind)) return unary(node);
    if (kind == c10::aten::pad || kind == c10::aten::constant_pad_nd) return pad(node);
    if (kind == c10::aten::flatten) return flatten(node);
    if (kind == c10::aten::view || kind == c10::aten::reshape) return reshape(node);
    if (kind == c10::aten::mean || kind == c10::aten::sum || kind == c10::aten::amax) return reduce(node);
    if (kind == c10::prim::ListConstruct) return list(node);
    if (kind == c10::aten::cat) return concatenate(node);
    if (kind == c10::aten::chunk || kind == c10::aten::split || kind == c10::aten::split_with_sizes ||
        kind == c10::aten::unsafe_chunk) {
      return split(node);
    }
    if (kind == c10::prim::ListUnpack) return unpack(node);
    if (kind == c10::aten::slice) return slice(node);
    if (kind == c10::aten::dim || (kind == c10::aten::size && node->inputs().size() == 1)) return;
    if (kind == c10::aten::size) {
      auto d = graph_constant_int(node->input(1));
      if (d && normalised_dim(*d, shape(node->input(0)).size()) != 1) return;
      throw Error(refused(node, "reads the channel count into the program"));
    }
    throw Error(refused(node, "is not understood"));
  }

  static bool is_elementwise_binary(c10::Symbol k) {
    return k == c10::aten::add || k == c10::aten::add_ || k == c10::aten::sub || k == c10::aten::sub_ ||
           k == c10::aten::mul || k == c10::aten::mul_ || k == c10::aten::div || k == c10::aten::div_;
  }

  static bool is_channelwise_unary(c10::Symbol k) {
    static const std::set<c10::Symbol> ops = {
        c10::aten::relu, c10::aten::relu_, c10::aten::relu6, c10::aten::hardtanh, c10::aten::hardtanh_,
        c10::aten::leaky_relu, c10::aten::leaky_relu_, c10::aten::sigmoid, c10::aten::sigmoid_, c10::aten::tanh,
        c10::aten::tanh_, c10::aten::hardswish, c10::aten::hardswish_, c10::aten::hardsigmoid, c10::aten::hardsigmoid_,
        c10::aten::silu, c10::aten::silu_, c10::aten::gelu, c10::aten::elu, c10::aten::elu_, c10::aten::clamp,
        c10::aten::clamp_, c10::aten::clamp_min, c10::aten::clamp_min_, c10::aten::dropout, c10::aten::dropout_,
        c10::aten::feature_dropout, c10::aten::contiguous, c10::aten::clone, c10::aten::detach,
        c10::aten::max_pool2d, c10::aten::avg_pool2d, c10::aten::adaptive_avg_pool2d, c10::aten::adaptive_max_pool2d,
        c10::aten::max_pool1d, c10::aten::avg_pool1d, c10::aten::upsample_nearest2d, c10::aten::upsample_bilinear2d,
        c10::aten::softmax, c10::aten::log_softmax};
    return ops.count(k) > 0;
  }

  // The one activation input of an operation whose other inputs are settings.
  const std::vector<int>& only_activation(const Node* node) {
    for (std::size_t i = 1; i < node->inputs().size(); ++i) {
      if (is_activation(node->input(i))) throw Error(refused(node, "takes two activations"));
    }
    if (!is_activation(node->input(0))) throw Error(refused(node, "takes an activation where a setting was expected"));
    return act_.at(node->input(0));
  }

  void unary(Node* node) {
    const auto& ids = only_activation(node);
    for (Value* out : node->outputs()) {
      if (out->type()->cast<c10::TensorType>()) act_[out] = ids;
    }
    const auto kind = node->kind();
    if (kind == c10::aten::max_pool2d || kind == c10::aten::avg_pool2d || kind == c10::aten::adaptive_avg_pool2d ||
        kind == c10::aten::adaptive_max_pool2d) {
      record("pool", node);
    } else if (kind != c10::aten::dropout && kind != c10::aten::dropout_ && kind != c10::aten::feature_dropout &&
               kind != c10::aten::contiguous && kind != c10::aten::detach && kind != c10::aten::clone) {
      // A clamping activation right after a conv or batch norm runs inside oneDNN's layout in
      // the optimised graph (almost free); any other activation is a kernel of its own.
      const auto producer = node->input(0)->node()->kind();
      const bool after_layer = producer == c10::aten::conv2d || producer == c10::aten::_convolution ||
                               producer == c10::aten::batch_norm || producer == c10::aten::linear;
      const bool clamping = kind == c10::aten::relu || kind == c10::aten::relu_ || kind == c10::aten::relu6 ||
                            kind == c10::aten::hardtanh || kind == c10::aten::hardtanh_ || kind == c10::aten::clamp ||
                            kind == c10::aten::clamp_;
      if (!after_layer || !clamping) record("elementwise", node);
    }
  }

  void convolution(Node* node, std::size_t index) {
    const Value* x = node->input(0);
    if (!is_activation(x) || is_activation(node->input(1))) throw Error(refused(node, "convolves with a computed weight"));
    const bool underscore = node->kind() == c10::aten::_convolution;
    if (underscore && graph_constant(node->input(6)).value_or(c10::IValue(true)).toBool()) {
      throw Error(refused(node, "is a transposed convolution"));
    }
    auto groups = graph_constant_int(node->input(underscore ? 8 : 6));
    if (!groups) throw Error(refused(node, "has a computed group count"));
    const auto weight = *parameter_input(node, 1);
    const auto bias = parameter_input(node, 2);
    const auto& in = act_.at(x);
    const auto& w = impl_.parameters.at(weight);
    const std::int64_t out_channels = w.size(0);
    CostLayer layer;
    layer.weight = weight;
    layer.name = module_of(weight);
    layer.kernel_area = product(w.sizes().vec(), 2);
    layer.in_positions = product(shape(x), 2);
    layer.out_positions = product(shape(node->output()), 2);
    layer.in_ids = in;
    std::vector<int> out;
    const auto in_channels = static_cast<std::int64_t>(in.size());
    if (*groups == 1) {
      use(weight, 1, in, node);
      out = fresh(out_channels);
    } else if (*groups == in_channels && out_channels == in_channels) {
      out = in;  // depthwise: channel c in, channel c out
      layer.depthwise = true;
      impl_.depthwise.emplace_back(index, in);
    } else {
      // A grouped convolution divides its channels into fixed blocks: they stay whole.
      for (int id : in) fixed_.insert(id);
      out = fresh(out_channels, /*fixed=*/true);
    }
    use(weight, 0, out, node);
    if (bias) use(*bias, 0, out, node);
    layer.out_ids = out;
    layer.bias = bias.value_or("");
    if (*groups == 1 && means_.count(x)) {
      layer.input_mean = means_.at(x);
      layer.input_std = stds_.at(x);
    }
    KernelUse k;
    k.kind = layer.depthwise ? "dwconv" : "conv";
    k.weights = w.numel();
    k.macs = elements(node->output()) * product(w.sizes().vec(), 1);
    k.input_elements = elements(x);
    k.output_elements = elements(node->output());
    k.kernel = static_cast<int>(w.size(-1));
    k.stride = static_cast<int>(std::max<std::int64_t>(1, shape(x).back() / std::max<std::int64_t>(1, shape(node->output()).back())));
    k.layer = static_cast<int>(impl_.layers.size());
    impl_.kernels.push_back(k);
    written_by_[node->output()] = impl_.layers.size();
    impl_.layers.push_back(std::move(layer));
    act_[node->output()] = std::move(out);
  }

  void batch_norm(Node* node) {
    const auto& ids = only_activation(node);
    BatchNormUse bn;
    bn.ids = ids;
    for (std::size_t i = 1; i <= 4; ++i) {
      auto path = parameter_input(node, i);
      if (!path) continue;
      use(*path, 0, ids, node);
      if (i == 1) bn.weight = *path;
      if (i == 3) {
        auto writer = written_by_.find(node->input(0));
        if (writer != written_by_.end()) impl_.layers[writer->second].next_running_mean = *path;
      }
      if (i == 4) bn.running_var = *path;
    }
    if (auto eps = graph_constant(node->input(7)); eps && eps->isDouble()) bn.eps = eps->toDouble();
    if (!bn.weight.empty() && !bn.running_var.empty()) impl_.batch_norms.push_back(std::move(bn));
    act_[node->output()] = ids;
  }

  void linear(Node* node) {
    const Value* x = node->input(0);
    if (!is_activation(x) || is_activation(node->input(1))) throw Error(refused(node, "multiplies by a computed weight"));
    if (shape(x).size() != 2) throw Error(refused(node, "is applied to a tensor of rank " + std::to_string(shape(x).size())));
    const auto weight = *parameter_input(node, 1);
    const auto bias = parameter_input(node, 2);
    const auto& in = act_.at(x);
    use(weight, 1, in, node);
    auto out = fresh(impl_.parameters.at(weight).size(0));
    use(weight, 0, out, node);
    if (bias) use(*bias, 0, out, node);
    CostLayer layer;
    layer.name = module_of(weight);
    layer.weight = weight;
    layer.linear = true;
    layer.in_ids = in;
    layer.out_ids = out;
    {
      KernelUse k;
      k.kind = "linear";
      k.weights = impl_.parameters.at(weight).numel();
      k.macs = k.weights;
      k.input_elements = elements(x);
      k.output_elements = elements(node->output());
      k.layer = static_cast<int>(impl_.layers.size());
      impl_.kernels.push_back(k);
    }
    layer.bias = bias.value_or("");
    if (means_.count(x)) {
      layer.input_mean = means_.at(x);
      layer.input_std = stds_.at(x);
    }
    written_by_[node->output()] = impl_.layers.size();
    impl_.layers.push_back(std::move(layer));
    act_[node->output()] = std::move(out);
  }

  // add/sub/mul/div: two activations are tied channel by channel (a residual addition, an
  // SE-style scaling); an activation and a parameter tensor (an input normalisation's mean)
  // makes the parameter's channel dimension a member; a number changes nothing.
  void binary(Node* node) {
    const Value* a = node->input(0);
    const Value* b = node->input(1);
    if (!is_activation(a)) std::swap(a, b);
    const auto& ids = act_.at(a);
    const auto rank = shape(a).size();
    if (is_activation(b)) {
      const auto& other = act_.at(b);
      if (other.size() == ids.size()) {
        tie(ids, other, node);
      } else if (other.size() != 1 && ids.size() != 1) {
        throw Error(refused(node, "broadcasts " + std::to_string(other.size()) + " channels against " + std::to_string(ids.size())));
      }
      act_[node->output()] = ids.size() >= other.size() ? ids : other;
      record(node->kind() == c10::aten::add || node->kind() == c10::aten::add_ || node->kind() == c10::aten::sub ||
                     node->kind() == c10::aten::sub_
                 ? "add"
                 : "elementwise",
             node);
      return;
    }
    if (b->type()->cast<c10::TensorType>()) {
      auto path = parameter_path(b);
      const c10::IValue value = path ? c10::IValue(impl_.parameters.at(*path)) : graph_constant(b).value_or(c10::IValue());
      if (!value.isTensor()) throw Error(refused(node, "combines an activation with a computed tensor"));
      const auto t = value.toTensor();
      // Broadcasting aligns trailing dimensions: the activation's dim 1 is t's dim t.dim() - (rank - 1).
      const auto channel_dim = t.dim() - static_cast<std::int64_t>(rank - 1);
      if (channel_dim >= 0 && t.size(channel_dim) != 1) {
        if (!path) throw Error(refused(node, "combines an activation with a constant tensor over its channels"));
        use(*path, static_cast<int>(channel_dim), ids, node);
      }
    }
    act_[node->output()] = ids;
  }

  void pad(Node* node) {
    const auto& ids = only_activation(node);
    // Only the count matters (two per padded dimension, from the last): the amounts may be
    // computed, as TensorFlow's "same" padding is from the input size.
    const Value* amounts = node->input(1);
    std::optional<std::size_t> count;
    if (amounts->node()->kind() == c10::prim::ListConstruct) count = amounts->node()->inputs().size();
    if (auto listed = graph_constant_ints(amounts)) count = listed->size();
    if (!count) throw Error(refused(node, "pads by a list of unknown length"));
    if (*count > 2 * (shape(node->input(0)).size() - 2)) throw Error(refused(node, "pads the channel dimension"));
    act_[node->output()] = ids;
    record("pad", node);
  }

  // Channels times the positions each one spans: what a linear layer reads after flattening.
  std::vector<int> spread(const std::vector<int>& ids, std::int64_t positions) const {
    std::vector<int> out;
    out.reserve(ids.size() * static_cast<std::size_t>(positions));
    for (int id : ids) out.insert(out.end(), static_cast<std::size_t>(positions), id);
    return out;
  }

  void flatten(Node* node) {
    const auto& ids = only_activation(node);
    const auto& in = shape(node->input(0));
    auto start = graph_constant_int(node->input(1));
    auto end = graph_constant_int(node->input(2));
    if (!start || !end) throw Error(refused(node, "has computed dimensions"));
    const int s = normalised_dim(*start, in.size());
    const int e = normalised_dim(*end, in.size());
    if (s >= 2 || e < 1) {
      act_[node->output()] = ids;
    } else if (s == 1 && e == static_cast<int>(in.size()) - 1) {
      act_[node->output()] = spread(ids, product(in, 2));
    } else {
      throw Error(refused(node, "folds the channel dimension into another"));
    }
  }

  // view/reshape: only as flatten(1) ([N, -1]) or a no-op; a size written into the program
  // would be wrong after pruning.
  void reshape(Node* node) {
    const auto& ids = only_activation(node);
    const auto& in = shape(node->input(0));
    const auto& out = shape(node->output());
    if (out == in) {
      act_[node->output()] = ids;
      return;
    }
    const Node* sizes = node->input(1)->node();
    const bool to_rows = out.size() == 2 && out[0] == in[0] && out[1] == product(in, 1);
    const bool minus_one = sizes->kind() == c10::prim::ListConstruct && sizes->inputs().size() == 2 &&
                           graph_constant_int(sizes->input(1)).value_or(0) == -1;
    const auto listed = graph_constant_ints(node->input(1));
    if (to_rows && (minus_one || (listed && listed->size() == 2 && (*listed)[1] == -1))) {
      act_[node->output()] = spread(ids, product(in, 2));
      return;
    }
    throw Error(refused(node, "reshapes to sizes written into the program"));
  }

  void reduce(Node* node) {
    const auto& ids = only_activation(node);
    const auto rank = shape(node->input(0)).size();
    auto dims = node->inputs().size() > 1 ? graph_constant_ints(node->input(1)) : std::nullopt;
    if (!dims || dims->empty()) throw Error(refused(node, "reduces over every dimension"));
    for (auto d : *dims) {
      if (normalised_dim(d, rank) == 1) throw Error(refused(node, "reduces over the channels"));
    }
    act_[node->output()] = ids;
    record("pool", node);
  }

  void list(Node* node) {
    std::vector<const Value*> members(node->inputs().begin(), node->inputs().end());
    for (const Value* v : members) {
      if (!is_activation(v)) throw Error(refused(node, "mixes activations with other values"));
    }
    for (const auto& use : node->output()->uses()) {
      if (use.user->kind() != c10::aten::cat) throw Error(refused(use.user, "takes a list of activations"));
    }
    lists_[node->output()] = std::move(members);
  }

  void concatenate(Node* node) {
    auto it = lists_.find(node->input(0));
    if (it == lists_.end()) throw Error(refused(node, "concatenates a list built elsewhere"));
    auto dim = graph_constant_int(node->input(1));
    if (!dim) throw Error(refused(node, "has a computed dimension"));
    const auto rank = shape(it->second.front()).size();
    std::vector<int> out;
    if (normalised_dim(*dim, rank) == 1) {
      for (const Value* v : it->second) out.insert(out.end(), act_.at(v).begin(), act_.at(v).end());
    } else {
      out = act_.at(it->second.front());
      for (const Value* v : it->second) tie(out, act_.at(v), node);
    }
    act_[node->output()] = std::move(out);
    record("concat", node);
  }

  // A split along the channels keeps its sizes written in the program: its channels stay whole.
  void split(Node* node) {
    const auto& ids = only_activation(node);
    const auto rank = shape(node->input(0)).size();
    auto dim = graph_constant_int(node->input(2));
    if (!dim) throw Error(refused(node, "has a computed dimension"));
    const bool channels = normalised_dim(*dim, rank) == 1;
    if (channels) {
      for (int id : ids) fixed_.insert(id);
    }
    parts_[node->output()] = {ids, channels};
  }

  void unpack(Node* node) {
    auto it = parts_.find(node->input(0));
    if (it == parts_.end()) throw Error(refused(node, "unpacks a list of unknown layout"));
    const auto& [ids, channels] = it->second;
    std::size_t offset = 0;
    for (Value* out : node->outputs()) {
      if (!channels) {
        act_[out] = ids;
        continue;
      }
      const auto count = static_cast<std::size_t>(shape(out).at(1));
      act_[out] = std::vector<int>(ids.begin() + static_cast<std::ptrdiff_t>(offset), ids.begin() + static_cast<std::ptrdiff_t>(offset + count));
      offset += count;
    }
  }

  void slice(Node* node) {
    const auto& ids = only_activation(node);
    const auto rank = shape(node->input(0)).size();
    auto dim = graph_constant_int(node->input(1));
    if (!dim) throw Error(refused(node, "has a computed dimension"));
    if (normalised_dim(*dim, rank) != 1) {
      act_[node->output()] = ids;
      return;
    }
    // Channel slices are written into the program: the sliced channels stay whole.
    for (int id : ids) fixed_.insert(id);
    auto start = graph_constant_int(node->input(2));
    const auto count = shape(node->output()).at(1);
    if (!start || (node->inputs().size() > 4 && graph_constant_int(node->input(4)).value_or(0) != 1)) {
      throw Error(refused(node, "slices channels with a computed start or a step"));
    }
    const auto from = static_cast<std::size_t>(*start < 0 ? *start + static_cast<std::int64_t>(ids.size()) : *start);
    act_[node->output()] = std::vector<int>(ids.begin() + static_cast<std::ptrdiff_t>(from),
                                            ids.begin() + static_cast<std::ptrdiff_t>(from + static_cast<std::size_t>(count)));
  }

  // A parameter that is sliced must not also be read by an operation that was not analysed.
  void check_parameter_uses() {
    for (const auto& [path, readers] : readers_) {
      if (!impl_.uses.count(path)) continue;
      for (const Value* v : readers) {
        for (const auto& u : v->uses()) {
          if (!recognised_.count(u.user)) throw Error(refused(u.user, "reads the pruned parameter " + path));
        }
      }
    }
  }

  void build_groups() {
    const int ids = static_cast<int>(uf_.parent.size());
    impl_.root.resize(static_cast<std::size_t>(ids));
    for (int i = 0; i < ids; ++i) impl_.root[static_cast<std::size_t>(i)] = uf_.find(i);
    std::vector<bool> fixed(static_cast<std::size_t>(ids), false);
    for (int id : fixed_) fixed[static_cast<std::size_t>(impl_.root[static_cast<std::size_t>(id)])] = true;
    // Each class's signature: which parameter slices it owns, how many indices in each.
    std::vector<std::map<std::string, int>> signature(static_cast<std::size_t>(ids));
    for (const auto& [path, uses] : impl_.uses) {
      for (const auto& u : uses) {
        const std::string member = path + ":" + std::to_string(u.dim);
        for (int id : u.ids) ++signature[static_cast<std::size_t>(impl_.root[static_cast<std::size_t>(id)])][member];
      }
    }
    impl_.group_of_class.assign(static_cast<std::size_t>(ids), -1);
    impl_.index_in_group.assign(static_cast<std::size_t>(ids), -1);
    std::map<std::pair<bool, std::map<std::string, int>>, int> by_signature;
    std::set<std::string> names;
    for (int c = 0; c < ids; ++c) {
      if (impl_.root[static_cast<std::size_t>(c)] != c) continue;
      const auto& sig = signature[static_cast<std::size_t>(c)];
      if (sig.empty()) continue;  // a channel no parameter reads (the input): nothing to prune
      auto key = std::make_pair(bool(fixed[static_cast<std::size_t>(c)]), sig);
      auto [it, added] = by_signature.emplace(key, static_cast<int>(impl_.groups.size()));
      if (added) {
        GraphChannelGroup group;
        group.prunable = !fixed[static_cast<std::size_t>(c)];
        for (const auto& [member, count] : sig) group.members.push_back(member);
        group.name = writer_name(sig);
        std::string name = group.name;
        for (int n = 2; names.count(name); ++n) name = group.name + "#" + std::to_string(n);
        group.name = name;
        names.insert(name);
        impl_.groups.push_back(std::move(group));
      }
      auto& group = impl_.groups[static_cast<std::size_t>(it->second)];
      impl_.group_of_class[static_cast<std::size_t>(c)] = it->second;
      impl_.index_in_group[static_cast<std::size_t>(c)] = group.channels++;
    }
  }

  // The first conv or linear layer writing the group (its weight's dim 0), else its first
  // member slice (e.g. "features.0.weight:1" for the model's input channels).
  std::string writer_name(const std::map<std::string, int>& sig) const {
    for (const auto& layer : impl_.layers) {
      if (sig.count(layer.weight + ":0")) return layer.name;
    }
    return sig.begin()->first;
  }

  ChannelGraph::Impl impl_;
  std::shared_ptr<Graph> graph_;
  UnionFind uf_;
  std::set<int> fixed_;
  static constexpr std::int64_t kProbeBatch = 8;
  std::int64_t probe_batch_ = 1;
  std::unordered_map<const Value*, std::vector<std::int64_t>> shapes_;
  std::unordered_map<const Value*, torch::Tensor> means_;   // per channel (dim 1), over the probe batch
  std::unordered_map<const Value*, torch::Tensor> stds_;    // the same channels' standard deviations
  std::unordered_map<const Value*, std::size_t> written_by_;  // conv/linear output -> its layer
  std::unordered_map<const Value*, std::vector<int>> act_;
  std::unordered_map<const Value*, std::vector<const Value*>> lists_;
  std::unordered_map<const Value*, std::pair<std::vector<int>, bool>> parts_;
  std::map<std::string, std::vector<const Value*>> readers_;
  std::unordered_set<const Node*> recognised_;
};

}  // namespace

Expected<ChannelGraph> ChannelGraph::analyse(const Module& module, const std::vector<std::int64_t>& input_shape,
                                             const torch::Tensor& probe) {
  if (probe.defined()) {
    auto wanted = input_shape;
    wanted[0] = probe.size(0);
    if (probe.sizes().vec() != wanted || probe.size(0) < 1 || !probe.is_floating_point()) {
      return invalid_argument("channel analysis: the probe inputs must be a float batch of the input shape");
    }
  }
  return capture([&]() -> ChannelGraph {
    ChannelGraph graph;
    torch::jit::Module copy;
    {
      torch::NoGradGuard no_grad;  // the copy's parameters must be leaves, to train
      copy = module.clone();
    }
    graph.impl_ = std::make_shared<const Impl>(Analysis(copy, input_shape, probe).run());
    return graph;
  });
}

Module ChannelGraph::module() const { return impl_->module; }

const std::vector<std::int64_t>& ChannelGraph::input_shape() const { return impl_->input_shape; }

const torch::Tensor& ChannelGraph::probe() const { return impl_->probe; }

const std::vector<GraphChannelGroup>& ChannelGraph::groups() const { return impl_->groups; }

const std::vector<KernelUse>& ChannelGraph::kernels() const { return impl_->kernels; }

namespace {

// Per group, one score per channel (in the group's channel order).
using GroupScores = std::vector<std::vector<float>>;

GroupScores zero_scores(const ChannelGraph::Impl& impl) {
  GroupScores scores(impl.groups.size());
  for (std::size_t g = 0; g < impl.groups.size(); ++g) scores[g].assign(static_cast<std::size_t>(impl.groups[g].channels), 0.0f);
  return scores;
}

// The group of a channel id and its position there ({-1, -1}: no parameter reads it).
std::pair<int, int> slot_of(const ChannelGraph::Impl& impl, int id) {
  const auto c = static_cast<std::size_t>(impl.root[static_cast<std::size_t>(id)]);
  return {impl.group_of_class[c], impl.index_in_group[c]};
}

std::vector<float> float_values(const torch::Tensor& t) {
  const auto f = t.to(torch::kFloat).contiguous();
  return std::vector<float>(f.data_ptr<float>(), f.data_ptr<float>() + f.numel());
}

// Adds, per channel, the mean |w| of each conv/linear row that writes it, except in `skip`ped groups.
void add_writer_norms(const ChannelGraph::Impl& impl, GroupScores& scores, const std::vector<bool>& skip) {
  for (const auto& l : impl.layers) {
    const auto& w = impl.parameters.at(l.weight);
    const auto rows = float_values(w.abs().reshape({w.size(0), -1}).mean(1));
    for (std::size_t i = 0; i < l.out_ids.size(); ++i) {
      auto [g, k] = slot_of(impl, l.out_ids[i]);
      if (g < 0 || skip[static_cast<std::size_t>(g)]) continue;
      scores[static_cast<std::size_t>(g)][static_cast<std::size_t>(k)] += rows[i];
    }
  }
}

std::map<std::string, torch::Tensor> prunable_by_name(const ChannelGraph::Impl& impl, const GroupScores& scores) {
  std::map<std::string, torch::Tensor> out;
  for (std::size_t g = 0; g < impl.groups.size(); ++g) {
    if (impl.groups[g].prunable) out[impl.groups[g].name] = torch::tensor(scores[g]);
  }
  return out;
}

}  // namespace

std::map<std::string, torch::Tensor> ChannelGraph::filter_l1_norms() const {
  torch::NoGradGuard no_grad;
  auto scores = zero_scores(*impl_);
  add_writer_norms(*impl_, scores, std::vector<bool>(impl_->groups.size(), false));
  return prunable_by_name(*impl_, scores);
}

std::map<std::string, std::vector<torch::Tensor>> ChannelGraph::batch_norm_scales() const {
  const Impl& impl = *impl_;
  std::map<std::string, std::vector<torch::Tensor>> out;
  for (const auto& bn : impl.batch_norms) {
    if (bn.ids.empty()) continue;
    const int g = impl.group_of_class[static_cast<std::size_t>(impl.root[static_cast<std::size_t>(bn.ids[0])])];
    if (g < 0 || !impl.groups[static_cast<std::size_t>(g)].prunable ||
        static_cast<int>(bn.ids.size()) != impl.groups[static_cast<std::size_t>(g)].channels) {
      continue;
    }
    bool in_order = true;
    for (std::size_t i = 0; i < bn.ids.size() && in_order; ++i) {
      const auto c = static_cast<std::size_t>(impl.root[static_cast<std::size_t>(bn.ids[i])]);
      in_order = impl.group_of_class[c] == g && impl.index_in_group[c] == static_cast<int>(i);
    }
    if (in_order) out[impl.groups[static_cast<std::size_t>(g)].name].push_back(impl.parameters.at(bn.weight));
  }
  return out;
}

std::map<std::string, int> ChannelGraph::widths() const {
  std::map<std::string, int> out;
  for (const auto& g : impl_->groups) {
    if (g.prunable) out[g.name] = g.channels;
  }
  return out;
}

namespace {

// How many channels survive at some widths: of an id list, of a parameter's dimension.
class KeptChannels {
 public:
  KeptChannels(const ChannelGraph::Impl& impl, const std::map<std::string, int>& widths) : impl_(impl), kept_(impl.groups.size(), 1.0) {
    for (std::size_t g = 0; g < impl.groups.size(); ++g) {
      auto it = widths.find(impl.groups[g].name);
      if (it != widths.end() && impl.groups[g].prunable) {
        kept_[g] = static_cast<double>(std::clamp(it->second, 1, impl.groups[g].channels)) / impl.groups[g].channels;
      }
    }
  }
  std::int64_t count(const std::vector<int>& ids) const {
    double n = 0;
    for (int id : ids) {
      const int g = impl_.group_of_class[static_cast<std::size_t>(impl_.root[static_cast<std::size_t>(id)])];
      n += g < 0 ? 1.0 : kept_[static_cast<std::size_t>(g)];
    }
    return static_cast<std::int64_t>(std::llround(n));
  }
  std::int64_t size(const std::string& path, int dim) const {
    for (const auto& u : impl_.uses.at(path)) {
      if (u.dim == dim) return count(u.ids);
    }
    return impl_.parameters.at(path).size(dim);
  }
  LayerCost layer(const CostLayer& l) const {
    LayerCost layer;
    layer.name = l.name;
    const std::int64_t out = size(l.weight, 0);
    const std::int64_t in = l.depthwise ? 1 : size(l.weight, 1);
    layer.macs = out * in * l.kernel_area * l.out_positions;
    layer.params = out * in * l.kernel_area;
    layer.input_elements = count(l.in_ids) * l.in_positions;
    layer.output_elements = count(l.out_ids) * l.out_positions;
    return layer;
  }

 private:
  const ChannelGraph::Impl& impl_;
  std::vector<double> kept_;
};

}  // namespace

ArchCost ChannelGraph::cost(const std::map<std::string, int>& widths) const {
  const Impl& impl = *impl_;
  const KeptChannels kept(impl, widths);
  ArchCost cost;
  for (const auto& [path, sizes] : impl.parameter_sizes) {
    std::int64_t n = 1;
    for (int d = 0; d < static_cast<int>(sizes.size()); ++d) n *= impl.uses.count(path) ? kept.size(path, d) : sizes[static_cast<std::size_t>(d)];
    cost.params += n;
  }
  for (const auto& l : impl.layers) {
    LayerCost layer = kept.layer(l);
    cost.macs += layer.macs;
    cost.peak_activation_bytes = std::max(cost.peak_activation_bytes, 4 * (layer.input_elements + layer.output_elements));
    cost.layers.push_back(std::move(layer));
  }
  return cost;
}

std::vector<KernelUse> ChannelGraph::kernels(const std::map<std::string, int>& widths) const {
  const Impl& impl = *impl_;
  const KeptChannels kept(impl, widths);
  std::vector<KernelUse> out = impl.kernels;
  for (auto& k : out) {
    if (k.layer >= 0) {
      const LayerCost layer = kept.layer(impl.layers[static_cast<std::size_t>(k.layer)]);
      k.macs = layer.macs;
      k.weights = layer.params;
      k.input_elements = layer.input_elements;
      k.output_elements = layer.output_elements;
    } else if (!k.out_ids.empty()) {
      k.input_elements = kept.count(k.in_ids) * k.in_positions;
      k.output_elements = kept.count(k.out_ids) * k.out_positions;
    }
  }
  return out;
}

namespace {

// Per channel, how far removing it moves its consumers' outputs on the probe inputs: its
// spread there (what mean folding cannot put back) times the norm of the weights that read
// it, summed over every conv/linear layer that reads it. Groups no such layer reads score 0.
GroupScores activation_scores(const ChannelGraph::Impl& impl) {
  auto scores = zero_scores(impl);
  for (const auto& l : impl.layers) {
    if (!l.input_std.defined() || l.depthwise) continue;
    const auto w = impl.parameters.at(l.weight).to(torch::kFloat);
    const auto reads = w.reshape({w.size(0), w.size(1), -1}).pow(2).sum(std::vector<std::int64_t>{0, 2}).sqrt();
    if (reads.size(0) != l.input_std.size(0) || reads.size(0) != static_cast<std::int64_t>(l.in_ids.size())) continue;
    const auto moved = float_values(reads * l.input_std);
    for (std::size_t i = 0; i < l.in_ids.size(); ++i) {
      auto [g, k] = slot_of(impl, l.in_ids[i]);
      if (g >= 0) scores[static_cast<std::size_t>(g)][static_cast<std::size_t>(k)] += moved[i];
    }
  }
  return scores;
}

}  // namespace

std::map<std::string, torch::Tensor> ChannelGraph::saliency() const {
  const Impl& impl = *impl_;
  torch::NoGradGuard no_grad;
  auto scores = zero_scores(impl);
  std::vector<bool> from_batch_norm(impl.groups.size(), false);
  for (const auto& bn : impl.batch_norms) {
    const auto gamma = impl.parameters.at(bn.weight).abs();
    const auto var = impl.parameters.at(bn.running_var);
    const auto spread = float_values(gamma * (var / (var + bn.eps)).sqrt());
    for (std::size_t i = 0; i < bn.ids.size(); ++i) {
      auto [g, k] = slot_of(impl, bn.ids[i]);
      if (g < 0) continue;
      float& cell = scores[static_cast<std::size_t>(g)][static_cast<std::size_t>(k)];
      cell = std::max(cell, spread[i]);
      from_batch_norm[static_cast<std::size_t>(g)] = true;
    }
  }
  add_writer_norms(impl, scores, from_batch_norm);
  if (impl.probe.defined()) {
    // Measured on real inputs, the activations say more than the parameters: a converted
    // model's batch norms may carry folded filter scales (mean 0, variance 1, any gamma), and a
    // channel's gamma then says nothing of how much its output varies.
    const auto measured = activation_scores(impl);
    for (std::size_t g = 0; g < scores.size(); ++g) {
      float total = 0;
      for (float v : measured[g]) total += v;
      if (total > 0) scores[g] = measured[g];
    }
  }
  return prunable_by_name(impl, scores);
}

Expected<Module> ChannelGraph::prune(const std::map<std::string, std::vector<std::int64_t>>& keep) const {
  const Impl& impl = *impl_;
  std::map<std::string, std::size_t> by_name;
  for (std::size_t g = 0; g < impl.groups.size(); ++g) by_name[impl.groups[g].name] = g;
  std::vector<std::vector<bool>> kept(impl.groups.size());
  for (std::size_t g = 0; g < impl.groups.size(); ++g) kept[g].assign(static_cast<std::size_t>(impl.groups[g].channels), true);
  for (const auto& [name, channels] : keep) {
    auto it = by_name.find(name);
    if (it == by_name.end()) return invalid_argument("prune: no channel group '" + name + "'");
    const auto& group = impl.groups[it->second];
    if (!group.prunable) return invalid_argument("prune: channel group '" + name + "' cannot be pruned");
    if (channels.empty()) return invalid_argument("prune: channel group '" + name + "' must keep at least one channel");
    auto& mask = kept[it->second];
    std::fill(mask.begin(), mask.end(), false);
    std::int64_t previous = -1;
    for (auto c : channels) {
      if (c <= previous || c >= group.channels) {
        return invalid_argument("prune: channel group '" + name + "': indices must be ascending, distinct and below " +
                                std::to_string(group.channels));
      }
      mask[static_cast<std::size_t>(c)] = true;
      previous = c;
    }
  }
  auto alive = [&](int id) {
    const auto c = static_cast<std::size_t>(impl.root[static_cast<std::size_t>(id)]);
    const int g = impl.group_of_class[c];
    return g < 0 || kept[static_cast<std::size_t>(g)][static_cast<std::size_t>(impl.index_in_group[c])];
  };
  return capture([&]() -> Module {
    torch::NoGradGuard no_grad;
    Module out = impl.module.clone();
    // A removed input channel's mean contribution (W[o, c] summed over the kernel, times the
    // channel's mean on the probe batch) moves into the layer's bias or the running mean of
    // the batch norm after it: channels whose output is nearly constant (a small batch-norm
    // scale, a large shift) are the least salient and would otherwise shift every consumer.
    std::map<std::string, torch::Tensor> adjusted;
    auto tensor = [&](const std::string& path) -> torch::Tensor& {
      auto it = adjusted.find(path);
      if (it == adjusted.end()) it = adjusted.emplace(path, impl.parameters.at(path).detach().clone()).first;
      return it->second;
    };
    for (const auto& l : impl.layers) {
      if (!l.input_mean.defined() || l.depthwise || (l.bias.empty() && l.next_running_mean.empty())) continue;
      const auto& w = impl.parameters.at(l.weight);
      std::vector<std::int64_t> removed;
      for (std::size_t i = 0; i < l.in_ids.size(); ++i) {
        if (!alive(l.in_ids[i])) removed.push_back(static_cast<std::int64_t>(i));
      }
      if (removed.empty() || l.input_mean.size(0) != w.size(1)) continue;
      const auto index = torch::tensor(removed, torch::kLong);
      const auto per_input = w.index_select(1, index).to(torch::kFloat).reshape({w.size(0), static_cast<std::int64_t>(removed.size()), -1}).sum(2);
      const auto delta = per_input.matmul(l.input_mean.index_select(0, index));
      if (!l.bias.empty()) {
        tensor(l.bias) += delta.to(impl.parameters.at(l.bias).dtype());
      } else {
        tensor(l.next_running_mean) -= delta.to(impl.parameters.at(l.next_running_mean).dtype());
      }
    }
    auto set = [&](const std::string& path, const torch::Tensor& t) {
      Module owner = out;
      std::string rest = path;
      for (auto dot = rest.find('.'); dot != std::string::npos; dot = rest.find('.')) {
        owner = owner.attr(rest.substr(0, dot)).toModule();
        rest = rest.substr(dot + 1);
      }
      owner.setattr(rest, t);
    };
    for (const auto& [path, t] : adjusted) {
      if (!impl.uses.count(path)) set(path, t.set_requires_grad(impl.parameters.at(path).requires_grad()));
    }
    for (const auto& [path, uses] : impl.uses) {
      torch::Tensor t = adjusted.count(path) ? adjusted.at(path) : impl.parameters.at(path);
      const bool grad = impl.parameters.at(path).requires_grad();
      for (const auto& u : uses) {
        std::vector<std::int64_t> index;
        for (std::size_t i = 0; i < u.ids.size(); ++i) {
          if (alive(u.ids[i])) index.push_back(static_cast<std::int64_t>(i));
        }
        t = t.index_select(u.dim, torch::tensor(index, torch::kLong));
      }
      set(path, t.contiguous().detach().clone().set_requires_grad(grad));
    }
    // A depthwise convolution's group count is its channel count, written in the graph.
    auto graph = out.get_method("forward").graph();
    std::vector<Node*> nodes(graph->nodes().begin(), graph->nodes().end());
    for (const auto& [index, ids] : impl.depthwise) {
      const auto channels = std::count_if(ids.begin(), ids.end(), alive);
      Node* conv = nodes.at(index);
      torch::jit::WithInsertPoint guard(conv);
      const std::size_t slot = conv->kind() == c10::aten::_convolution ? 8 : 6;
      conv->replaceInput(slot, graph->insertConstant(static_cast<std::int64_t>(channels)));
    }
    return out;
  });
}

}  // namespace edgefleet
