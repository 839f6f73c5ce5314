#include "edgefleet/onnx_export.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/remove_mutation.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "core/atomic_file.h"
#include "edgefleet/classifier.h"
#include "edgefleet/sha256.h"
#include "model/torchscript_graph.h"

namespace edgefleet {

using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

namespace {

Status refused(const Node* node, const std::string& why) {
  return unsupported("onnx export: operation " + graph_node_location(node) + " " + why);
}

// Thrown when a computed size depends on the batch in a way a dynamic-batch ONNX graph cannot
// say; the export is then redone with the batch fixed at the card's probe batch of 1.
struct BatchDependent {};

bool is_tensor(const Value* v) { return static_cast<bool>(v->type()->cast<c10::TensorType>()); }

bool produces_tensors(const Node* n) {
  for (const Value* o : n->outputs()) {
    if (is_tensor(o)) return true;
    if (auto list = o->type()->cast<c10::ListType>(); list && list->getElementType()->kind() == c10::TypeKind::TensorType) return true;
  }
  return false;
}

// Values the probe may evaluate and fold: scalars and lists of them.
bool is_foldable(const Value* v) {
  switch (v->type()->kind()) {
    case c10::TypeKind::IntType:
    case c10::TypeKind::FloatType:
    case c10::TypeKind::BoolType:
      return true;
    case c10::TypeKind::ListType: {
      const auto element = v->type()->castRaw<c10::ListType>()->getElementType()->kind();
      return element == c10::TypeKind::IntType || element == c10::TypeKind::FloatType || element == c10::TypeKind::BoolType;
    }
    default:
      return false;
  }
}

std::int64_t normalised_dim(std::int64_t dim, std::size_t rank) { return dim < 0 ? dim + static_cast<std::int64_t>(rank) : dim; }

// The frozen graph with every shape computation evaluated for one input size: each scalar the
// probe finds equal at batch 1 and 2 becomes a constant (and constant propagation then inlines
// the branches it decides, e.g. torchvision's "input must be 4-D" checks); an int that equals
// the batch at both is remembered as the batch size.
struct SpecialisedGraph {
  std::shared_ptr<Graph> graph;
  std::unordered_map<const Value*, std::vector<std::int64_t>> shapes;  // at batch 1
  std::unordered_set<const Value*> batch_sizes;
};

SpecialisedGraph specialise(const torch::jit::Module& frozen, const std::vector<std::int64_t>& input_shape, bool fixed_batch) {
  SpecialisedGraph out;
  out.graph = frozen.get_method("forward").graph()->copy();
  torch::jit::RemoveListMutation(out.graph);
  torch::jit::RemoveTensorMutation(out.graph);
  torch::jit::ConstantPropagation(out.graph);
  torch::jit::EliminateDeadCode(out.graph);
  if (out.graph->inputs().size() != 2) throw Error(invalid_argument("onnx export: forward must take one input tensor"));
  torch::NoGradGuard no_grad;
  for (int round = 0; round < 16; ++round) {
    std::vector<const Value*> wanted;
    for (Node* node : out.graph->nodes()) {
      for (const Value* v : node->outputs()) {
        if (is_tensor(v) || (is_foldable(v) && node->kind() != c10::prim::Constant)) wanted.push_back(v);
      }
    }
    std::vector<std::int64_t> shape = input_shape;
    shape[0] = 1;
    torch::manual_seed(0);
    const auto one = probe_graph_values(out.graph, frozen._ivalue(), torch::rand(shape), wanted);
    std::vector<c10::IValue> two;
    if (!fixed_batch) {
      shape[0] = 2;
      two = probe_graph_values(out.graph, frozen._ivalue(), torch::rand(shape), wanted);
    }
    out.shapes.clear();
    out.shapes[out.graph->inputs()[1]] = shape;
    out.shapes[out.graph->inputs()[1]][0] = 1;
    out.batch_sizes.clear();
    std::vector<std::pair<Value*, c10::IValue>> folds;
    for (std::size_t i = 0; i < wanted.size(); ++i) {
      if (one[i].isTensor()) {
        out.shapes[wanted[i]] = one[i].toTensor().sizes().vec();
        continue;
      }
      if (fixed_batch || one[i] == two[i]) {
        folds.emplace_back(const_cast<Value*>(wanted[i]), one[i]);
      } else if (one[i].isInt() && one[i].toInt() == 1 && two[i].toInt() == 2) {
        out.batch_sizes.insert(wanted[i]);
      }
    }
    if (folds.empty()) return out;
    torch::jit::WithInsertPoint guard(out.graph->block()->nodes().front());
    for (auto& [value, constant] : folds) value->replaceAllUsesWith(out.graph->insertConstant(constant));
    torch::jit::ConstantPropagation(out.graph);
    torch::jit::EliminateDeadCode(out.graph);
  }
  throw Error(internal_error("onnx export: the graph's shape computations did not settle"));
}

onnx::AttributeProto* attribute(onnx::NodeProto* node, const std::string& name, onnx::AttributeProto::AttributeType type) {
  auto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(type);
  return a;
}
void set_int(onnx::NodeProto* node, const std::string& name, std::int64_t v) { attribute(node, name, onnx::AttributeProto::INT)->set_i(v); }
void set_float(onnx::NodeProto* node, const std::string& name, float v) { attribute(node, name, onnx::AttributeProto::FLOAT)->set_f(v); }
void set_string(onnx::NodeProto* node, const std::string& name, const std::string& v) {
  attribute(node, name, onnx::AttributeProto::STRING)->set_s(v);
}
void set_ints(onnx::NodeProto* node, const std::string& name, const std::vector<std::int64_t>& v) {
  auto* a = attribute(node, name, onnx::AttributeProto::INTS);
  for (auto x : v) a->add_ints(x);
}

// Writes one specialised graph as an ONNX model.
class OnnxWriter {
 public:
  OnnxWriter(const SpecialisedGraph& g, const std::string& name, bool dynamic_batch)
      : g_(g), dynamic_batch_(dynamic_batch) {
    model_.set_ir_version(onnx::IR_VERSION_2019_3_18);  // the IR of opset 10
    model_.set_producer_name("edgefleet");
    auto* opset = model_.add_opset_import();
    opset->set_domain("");
    opset->set_version(kOnnxOpset);
    graph_ = model_.mutable_graph();
    graph_->set_name(name);
  }

  onnx::ModelProto write() {
    const Value* input = g_.graph->inputs()[1];
    names_[input] = "input";
    declare(graph_->add_input(), "input", shape(input));
    if (g_.graph->outputs().size() != 1 || !is_tensor(g_.graph->outputs()[0])) {
      throw Error(unsupported("onnx export: forward must return one logits tensor"));
    }
    const Value* logits = g_.graph->outputs()[0];
    if (logits == input || logits->node()->kind() == c10::prim::Constant) {
      throw Error(unsupported("onnx export: forward must compute its logits from its input"));
    }
    for (Node* node : g_.graph->nodes()) visit(node);
    // The last operation's output is renamed "logits" (an identity keeps an alias honest).
    node("Identity", {name(logits)}, {"logits"});
    declare(graph_->add_output(), "logits", shape(logits));
    return model_;
  }

  int nodes() const { return graph_->node_size(); }

 private:
  void declare(onnx::ValueInfoProto* info, const std::string& name, const std::vector<std::int64_t>& sizes) {
    info->set_name(name);
    auto* type = info->mutable_type()->mutable_tensor_type();
    type->set_elem_type(onnx::TensorProto::FLOAT);
    auto* dims = type->mutable_shape();
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      auto* d = dims->add_dim();
      if (i == 0 && dynamic_batch_) {
        d->set_dim_param("n");
      } else {
        d->set_dim_value(sizes[i]);
      }
    }
  }

  const std::vector<std::int64_t>& shape(const Value* v) const {
    auto it = g_.shapes.find(v);
    if (it == g_.shapes.end()) throw Error(internal_error("onnx export: no shape for %" + v->debugName()));
    return it->second;
  }

  onnx::NodeProto* node(const std::string& op, const std::vector<std::string>& inputs, const std::vector<std::string>& outputs) {
    auto* n = graph_->add_node();
    n->set_op_type(op);
    n->set_name(op + "_" + std::to_string(graph_->node_size()));
    for (const auto& i : inputs) n->add_input(i);
    for (const auto& o : outputs) n->add_output(o);
    return n;
  }

  std::string fresh(const std::string& hint) { return hint + "_" + std::to_string(++counter_); }

  std::string initializer(const std::string& hint, const torch::Tensor& value) {
    auto* t = graph_->add_initializer();
    const std::string n = fresh(hint);
    t->set_name(n);
    torch::Tensor c;
    if (value.is_floating_point()) {
      c = value.detach().to(torch::kFloat).contiguous();
      t->set_data_type(onnx::TensorProto::FLOAT);
    } else {
      c = value.detach().to(torch::kLong).contiguous();
      t->set_data_type(onnx::TensorProto::INT64);
    }
    for (auto d : c.sizes()) t->add_dims(d);
    t->set_raw_data(std::string(static_cast<const char*>(c.data_ptr()), c.nbytes()));
    return n;
  }
  std::string float_scalar(float v) { return initializer("scalar", torch::tensor(v)); }
  std::string int64s(const std::vector<std::int64_t>& v) { return initializer("ints", torch::tensor(v, torch::kLong)); }

  // The ONNX name of a value that is a tensor: an activation, the input, or a constant (an
  // initializer; a number becomes a scalar tensor).
  std::string name(const Value* v) {
    if (auto it = names_.find(v); it != names_.end()) return it->second;
    auto c = graph_constant(v);
    if (!c) throw Error(internal_error("onnx export: %" + v->debugName() + " has no ONNX name"));
    std::string n;
    if (c->isTensor()) {
      n = initializer("const", c->toTensor());
    } else if (c->isDouble() || c->isInt() || c->isBool()) {
      n = float_scalar(static_cast<float>(c->toScalar().toDouble()));
    } else {
      throw Error(internal_error("onnx export: %" + v->debugName() + " is not a tensor"));
    }
    names_[v] = n;
    return n;
  }
  std::string out(const Value* v) {
    const std::string n = fresh(v->debugName());
    names_[v] = n;
    return n;
  }
  void alias(const Value* v, const Value* as) { names_[v] = name(as); }

  std::int64_t int_of(const Node* n, std::size_t i) const {
    auto v = graph_constant_int(n->input(i));
    if (!v) throw Error(refused(n, "takes a computed int as input " + std::to_string(i)));
    return *v;
  }
  double number_of(const Node* n, std::size_t i) const {
    auto v = graph_constant(n->input(i));
    if (!v || !(v->isDouble() || v->isInt() || v->isBool())) throw Error(refused(n, "takes a computed number as input " + std::to_string(i)));
    return v->toScalar().toDouble();
  }
  bool bool_of(const Node* n, std::size_t i) const {
    auto v = graph_constant(n->input(i));
    if (!v || !v->isBool()) throw Error(refused(n, "takes a computed flag as input " + std::to_string(i)));
    return v->toBool();
  }
  std::vector<std::int64_t> ints_of(const Node* n, std::size_t i, std::size_t expand_to = 0) const {
    auto v = graph_constant_ints(n->input(i));
    if (!v) throw Error(refused(n, "takes a computed size list as input " + std::to_string(i)));
    if (expand_to > 0 && v->size() == 1) v->resize(expand_to, v->front());
    return *v;
  }
  torch::Tensor tensor_of(const Node* n, std::size_t i) const {
    auto v = graph_constant(n->input(i));
    if (!v || !v->isTensor()) throw Error(refused(n, "takes a computed tensor as parameter " + std::to_string(i)));
    return v->toTensor();
  }
  // An optional number: nullopt for None.
  std::optional<double> optional_number(const Node* n, std::size_t i) const {
    if (graph_value_is_none(n->input(i))) return std::nullopt;
    return number_of(n, i);
  }

  void visit(Node* n) {
    const auto kind = n->kind();
    if (kind == c10::prim::Constant) return;
    // Leftover size arithmetic (on the batch size) is read by its consumers, the reshapes.
    if (!produces_tensors(n) && kind != c10::prim::If && kind != c10::prim::Loop && kind != c10::prim::RaiseException) return;
    if (kind == c10::prim::ListConstruct) return list_construct(n);
    if (kind == c10::aten::conv2d || kind == c10::aten::_convolution) return convolution(n);
    if (kind == c10::aten::batch_norm) return batch_norm(n);
    if (kind == c10::aten::linear) return linear(n);
    if (kind == c10::aten::matmul) return matmul(n);
    if (kind == c10::aten::relu) return void(unary(n, "Relu"));
    if (kind == c10::aten::sigmoid) return void(unary(n, "Sigmoid"));
    if (kind == c10::aten::tanh) return void(unary(n, "Tanh"));
    if (kind == c10::aten::leaky_relu) {
      return set_float(unary(n, "LeakyRelu"), "alpha", static_cast<float>(number_of(n, 1)));
    }
    if (kind == c10::aten::hardtanh) return clip(n, number_of(n, 1), number_of(n, 2));
    if (kind == c10::aten::relu6) return clip(n, 0.0, 6.0);
    if (kind == c10::aten::clamp) return clip(n, optional_number(n, 1), optional_number(n, 2));
    if (kind == c10::aten::clamp_min) return clip(n, number_of(n, 1), std::nullopt);
    if (kind == c10::aten::hardsigmoid) return hard_sigmoid(n, false);
    if (kind == c10::aten::hardswish) return hard_sigmoid(n, true);
    if (kind == c10::aten::silu) return silu(n);
    if (kind == c10::aten::elu) return elu(n);
    if (kind == c10::aten::softmax || kind == c10::aten::log_softmax) return softmax(n);
    if (kind == c10::aten::max_pool2d) return max_pool(n);
    if (kind == c10::aten::avg_pool2d) return avg_pool(n);
    if (kind == c10::aten::adaptive_avg_pool2d || kind == c10::aten::adaptive_max_pool2d) return adaptive_pool(n);
    if (kind == c10::aten::mean || kind == c10::aten::sum || kind == c10::aten::amax) return reduce(n);
    if (kind == c10::aten::flatten) return flatten(n);
    if (kind == c10::aten::view || kind == c10::aten::reshape) return reshape(n);
    if (kind == c10::aten::add || kind == c10::aten::sub) return add_sub(n);
    if (kind == c10::aten::mul) return binary(n, "Mul");
    if (kind == c10::aten::div) return binary(n, "Div");
    if (kind == c10::aten::cat) return concatenate(n);
    if (kind == c10::aten::chunk || kind == c10::aten::unsafe_chunk || kind == c10::aten::split ||
        kind == c10::aten::split_with_sizes) {
      return split(n);
    }
    if (kind == c10::prim::ListUnpack) return unpack(n);
    if (kind == c10::aten::slice) return slice(n);
    if (kind == c10::aten::pad || kind == c10::aten::constant_pad_nd) return pad(n);
    if (kind == c10::aten::permute) return set_ints(unary(n, "Transpose"), "perm", normalised(ints_of(n, 1), n->input(0)));
    if (kind == c10::aten::dropout || kind == c10::aten::feature_dropout || kind == c10::aten::alpha_dropout ||
        kind == c10::aten::contiguous || kind == c10::aten::clone || kind == c10::aten::detach) {
      return alias(n->output(), n->input(0));
    }
    if (kind == c10::prim::If || kind == c10::prim::Loop) throw Error(refused(n, "branches on the input's values"));
    throw Error(refused(n, "has no ONNX form in this exporter"));
  }

  std::vector<std::int64_t> normalised(std::vector<std::int64_t> dims, const Value* of) const {
    for (auto& d : dims) d = normalised_dim(d, shape(of).size());
    return dims;
  }

  onnx::NodeProto* unary(const Node* n, const std::string& op) { return node(op, {name(n->input(0))}, {out(n->output())}); }

  // A list of tensors feeds a concatenation, which reads it.
  void list_construct(const Node* n) {
    for (const auto& use : n->output()->uses()) {
      if (use.user->kind() != c10::aten::cat) throw Error(refused(use.user, "takes a list of activations"));
    }
  }

  void convolution(const Node* n) {
    if (n->kind() == c10::aten::_convolution && bool_of(n, 6)) throw Error(refused(n, "is a transposed convolution"));
    const torch::Tensor w = tensor_of(n, 1);
    if (w.dim() != 4) throw Error(refused(n, "is not a 2-D convolution"));
    const std::vector<std::int64_t> kernel = {w.size(2), w.size(3)};
    const auto stride = ints_of(n, 3, 2);
    const auto dilation = ints_of(n, 5, 2);
    const std::size_t groups_at = n->kind() == c10::aten::_convolution ? 8 : 6;
    std::vector<std::int64_t> pads;
    if (auto mode = graph_constant(n->input(4)); mode && mode->isString()) {
      if (mode->toStringRef() == "valid") {
        pads = {0, 0, 0, 0};
      } else {  // "same" (stride 1): the extra pixel of an even window goes after
        std::vector<std::int64_t> before(2), after(2);
        for (int i = 0; i < 2; ++i) {
          const std::int64_t total = dilation[i] * (kernel[i] - 1);
          before[i] = total / 2;
          after[i] = total - before[i];
        }
        pads = {before[0], before[1], after[0], after[1]};
      }
    } else {
      const auto p = ints_of(n, 4, 2);
      pads = {p[0], p[1], p[0], p[1]};
    }
    std::vector<std::string> inputs = {name(n->input(0)), initializer("weight", w)};
    if (!graph_value_is_none(n->input(2))) inputs.push_back(initializer("bias", tensor_of(n, 2)));
    auto* conv = node("Conv", inputs, {out(n->output())});
    set_ints(conv, "kernel_shape", kernel);
    set_ints(conv, "strides", stride);
    set_ints(conv, "pads", pads);
    set_ints(conv, "dilations", dilation);
    set_int(conv, "group", int_of(n, groups_at));
  }

  void batch_norm(const Node* n) {
    const torch::Tensor mean = tensor_of(n, 3), var = tensor_of(n, 4);
    const torch::Tensor scale = graph_value_is_none(n->input(1)) ? torch::ones_like(mean) : tensor_of(n, 1);
    const torch::Tensor shift = graph_value_is_none(n->input(2)) ? torch::zeros_like(mean) : tensor_of(n, 2);
    auto* bn = node("BatchNormalization",
                    {name(n->input(0)), initializer("bn_scale", scale), initializer("bn_bias", shift), initializer("bn_mean", mean),
                     initializer("bn_var", var)},
                    {out(n->output())});
    set_float(bn, "epsilon", static_cast<float>(number_of(n, 7)));
  }

  void linear(const Node* n) {
    const torch::Tensor w = tensor_of(n, 1);
    const bool bias = !graph_value_is_none(n->input(2));
    if (shape(n->input(0)).size() == 2) {  // opset 10's Gemm needs its bias input
      const torch::Tensor b = bias ? tensor_of(n, 2) : torch::zeros({w.size(0)});
      set_int(node("Gemm", {name(n->input(0)), initializer("weight", w), initializer("bias", b)}, {out(n->output())}), "transB", 1);
      return;
    }
    const std::string product = bias ? fresh("matmul") : out(n->output());
    node("MatMul", {name(n->input(0)), initializer("weight", w.t())}, {product});
    if (bias) node("Add", {product, initializer("bias", tensor_of(n, 2))}, {out(n->output())});
  }

  void matmul(const Node* n) { node("MatMul", {name(n->input(0)), name(n->input(1))}, {out(n->output())}); }

  void clip(const Node* n, std::optional<double> lo, std::optional<double> hi) {
    if (lo && *lo == 0.0 && !hi) {
      unary(n, "Relu");
      return;
    }
    auto* c = unary(n, "Clip");  // opset 10: the bounds are attributes
    set_float(c, "min", lo ? static_cast<float>(*lo) : std::numeric_limits<float>::lowest());
    set_float(c, "max", hi ? static_cast<float>(*hi) : std::numeric_limits<float>::max());
  }

  // hardsigmoid(x) = clip(x / 6 + 1/2, 0, 1); hardswish(x) = x * hardsigmoid(x).
  void hard_sigmoid(const Node* n, bool times_input) {
    const std::string gate = times_input ? fresh("hardsigmoid") : out(n->output());
    auto* h = node("HardSigmoid", {name(n->input(0))}, {gate});
    set_float(h, "alpha", 1.0f / 6.0f);
    set_float(h, "beta", 0.5f);
    if (times_input) node("Mul", {name(n->input(0)), gate}, {out(n->output())});
  }

  void silu(const Node* n) {
    const std::string gate = fresh("sigmoid");
    node("Sigmoid", {name(n->input(0))}, {gate});
    node("Mul", {name(n->input(0)), gate}, {out(n->output())});
  }

  void elu(const Node* n) {
    if (number_of(n, 2) != 1.0 || number_of(n, 3) != 1.0) throw Error(refused(n, "is a scaled ELU"));
    set_float(unary(n, "Elu"), "alpha", static_cast<float>(number_of(n, 1)));
  }

  // Opset 11's softmax flattens from its axis: the same as torch's only on the last axis.
  void softmax(const Node* n) {
    const std::size_t rank = shape(n->input(0)).size();
    if (normalised_dim(int_of(n, 1), rank) != static_cast<std::int64_t>(rank) - 1) throw Error(refused(n, "is not over the last axis"));
    set_int(unary(n, n->kind() == c10::aten::softmax ? "Softmax" : "LogSoftmax"), "axis", static_cast<std::int64_t>(rank) - 1);
  }

  void max_pool(const Node* n) {
    const auto kernel = ints_of(n, 1, 2);
    auto stride = ints_of(n, 2, 2);
    if (stride.empty()) stride = kernel;
    const auto p = ints_of(n, 3, 2);
    const auto dilation = ints_of(n, 4, 2);
    if (dilation != std::vector<std::int64_t>{1, 1}) throw Error(refused(n, "is a dilated pooling"));
    auto* pool = unary(n, "MaxPool");
    set_ints(pool, "kernel_shape", kernel);
    set_ints(pool, "strides", stride);
    set_ints(pool, "pads", {p[0], p[1], p[0], p[1]});
    if (bool_of(n, 5)) set_int(pool, "ceil_mode", 1);
  }

  void avg_pool(const Node* n) {
    const auto kernel = ints_of(n, 1, 2);
    auto stride = ints_of(n, 2, 2);
    if (stride.empty()) stride = kernel;
    const auto p = ints_of(n, 3, 2);
    if (!graph_value_is_none(n->input(6))) throw Error(refused(n, "overrides its divisor"));
    auto* pool = unary(n, "AveragePool");
    set_ints(pool, "kernel_shape", kernel);
    set_ints(pool, "strides", stride);
    set_ints(pool, "pads", {p[0], p[1], p[0], p[1]});
    if (bool_of(n, 4)) set_int(pool, "ceil_mode", 1);
    if (bool_of(n, 5) && (p[0] > 0 || p[1] > 0)) set_int(pool, "count_include_pad", 1);
  }

  // adaptive_max_pool2d also returns indices (a second output, which must be unused).
  void adaptive_pool(const Node* n) {
    const bool average = n->kind() == c10::aten::adaptive_avg_pool2d;
    if (n->outputs().size() > 1 && n->outputs()[1]->hasUses()) throw Error(refused(n, "uses the pooling's indices"));
    const Value* result = n->outputs()[0];
    const auto& in = shape(n->input(0));
    const auto size = ints_of(n, 1, 2);
    if (in.size() != 4) throw Error(refused(n, "does not pool a 4-D activation"));
    if (size == std::vector<std::int64_t>{1, 1}) {
      node(average ? "GlobalAveragePool" : "GlobalMaxPool", {name(n->input(0))}, {out(result)});
      return;
    }
    if (in[2] % size[0] != 0 || in[3] % size[1] != 0) throw Error(refused(n, "pools windows of unequal sizes"));
    auto* pool = node(average ? "AveragePool" : "MaxPool", {name(n->input(0))}, {out(result)});
    set_ints(pool, "kernel_shape", {in[2] / size[0], in[3] / size[1]});
    set_ints(pool, "strides", {in[2] / size[0], in[3] / size[1]});
  }

  // mean/sum/amax(x, dims, keepdim): a global pooling over the spatial axes of a 4-D
  // activation (the form every engine knows), else ReduceMean/ReduceSum/ReduceMax.
  void reduce(const Node* n) {
    const auto& in = shape(n->input(0));
    auto dims = normalised(ints_of(n, 1), n->input(0));
    std::sort(dims.begin(), dims.end());
    const bool keep = bool_of(n, 2);
    if (n->kind() != c10::aten::amax && n->inputs().size() > 3 && !graph_value_is_none(n->input(3))) {
      throw Error(refused(n, "changes the element type"));
    }
    if (in.size() == 4 && dims == std::vector<std::int64_t>{2, 3} && n->kind() != c10::aten::sum) {
      const std::string pooled = keep ? out(n->output()) : fresh("pooled");
      node(n->kind() == c10::aten::mean ? "GlobalAveragePool" : "GlobalMaxPool", {name(n->input(0))}, {pooled});
      if (!keep) set_int(node("Flatten", {pooled}, {out(n->output())}), "axis", 1);
      return;
    }
    const char* op = n->kind() == c10::aten::mean ? "ReduceMean" : n->kind() == c10::aten::sum ? "ReduceSum" : "ReduceMax";
    auto* r = unary(n, op);
    set_ints(r, "axes", dims);
    set_int(r, "keepdims", keep ? 1 : 0);
  }

  void flatten(const Node* n) {
    const auto& in = shape(n->input(0));
    const auto start = normalised_dim(int_of(n, 1), in.size());
    const auto end = normalised_dim(int_of(n, 2), in.size());
    if (end == static_cast<std::int64_t>(in.size()) - 1 && start >= 1) {
      if (start == 1) {
        set_int(unary(n, "Flatten"), "axis", 1);
        return;
      }
    }
    if (start == 0) throw Error(refused(n, "flattens the batch axis"));
    write_reshape(n, shape(n->output()));
  }

  // Reshape to `sizes` (the output's shape at batch 1): the batch axis stays free, as 0 (copy).
  void write_reshape(const Node* n, std::vector<std::int64_t> sizes) {
    if (dynamic_batch_) sizes[0] = 0;
    node("Reshape", {name(n->input(0)), int64s(sizes)}, {out(n->output())});
  }

  void reshape(const Node* n) {
    const Value* list = n->input(1);
    std::vector<std::int64_t> sizes;
    if (auto c = graph_constant_ints(list)) {
      sizes = *c;
      // A written size at the batch axis fixes the batch, unless it is -1.
      if (dynamic_batch_ && !sizes.empty() && sizes[0] != -1) throw BatchDependent{};
      node("Reshape", {name(n->input(0)), int64s(sizes)}, {out(n->output())});
      return;
    }
    if (list->node()->kind() != c10::prim::ListConstruct) throw Error(refused(n, "reshapes to a computed size list"));
    for (std::size_t i = 0; i < list->node()->inputs().size(); ++i) {
      const Value* e = list->node()->input(i);
      if (auto c = graph_constant_int(e)) {
        sizes.push_back(*c);
      } else if (i == 0 && g_.batch_sizes.count(e)) {
        sizes.push_back(0);  // copy the input's batch size
      } else {
        throw BatchDependent{};
      }
    }
    node("Reshape", {name(n->input(0)), int64s(sizes)}, {out(n->output())});
  }

  void add_sub(const Node* n) {
    const double alpha = n->inputs().size() > 2 ? number_of(n, 2) : 1.0;
    const char* op = n->kind() == c10::aten::add ? "Add" : "Sub";
    std::string b;
    if (alpha == 1.0) {
      b = name(n->input(1));
    } else if (auto c = graph_constant(n->input(1))) {
      b = c->isTensor() ? initializer("const", c->toTensor() * alpha) : float_scalar(static_cast<float>(c->toScalar().toDouble() * alpha));
    } else {
      b = fresh("scaled");
      node("Mul", {name(n->input(1)), float_scalar(static_cast<float>(alpha))}, {b});
    }
    node(op, {name(n->input(0)), b}, {out(n->output())});
  }

  void binary(const Node* n, const std::string& op) { node(op, {name(n->input(0)), name(n->input(1))}, {out(n->output())}); }

  void concatenate(const Node* n) {
    const Value* list = n->input(0);
    if (list->node()->kind() != c10::prim::ListConstruct) throw Error(refused(n, "joins a computed list"));
    std::vector<std::string> inputs;
    for (const Value* v : list->node()->inputs()) inputs.push_back(name(v));
    set_int(node("Concat", inputs, {out(n->output())}), "axis", normalised_dim(int_of(n, 1), shape(n->output()).size()));
  }

  // chunk/split produce a list that a ListUnpack opens: the Split is written there, where the
  // pieces (and their sizes) are known.
  void split(const Node* n) {
    for (const auto& use : n->output()->uses()) {
      if (use.user->kind() != c10::prim::ListUnpack) throw Error(refused(n, "returns a list used whole"));
    }
    splits_[n->output()] = n;
  }

  void unpack(const Node* n) {
    auto it = splits_.find(n->input(0));
    if (it == splits_.end()) throw Error(refused(n, "opens a list the exporter did not write"));
    const Node* source = it->second;
    const auto axis = normalised_dim(int_of(source, 2), shape(source->input(0)).size());  // (self, chunks|sizes, dim)
    std::vector<std::int64_t> sizes;
    std::vector<std::string> outputs;
    for (const Value* o : n->outputs()) {
      sizes.push_back(shape(o).at(static_cast<std::size_t>(axis)));
      outputs.push_back(out(o));
    }
    auto* s = node("Split", {name(source->input(0))}, outputs);
    set_int(s, "axis", axis);
    set_ints(s, "split", sizes);
  }

  void slice(const Node* n) {
    const auto& in = shape(n->input(0));
    const auto dim = normalised_dim(int_of(n, 1), in.size());
    const std::int64_t start = graph_value_is_none(n->input(2)) ? 0 : int_of(n, 2);
    const std::int64_t end = graph_value_is_none(n->input(3)) ? std::numeric_limits<std::int64_t>::max() : int_of(n, 3);
    node("Slice", {name(n->input(0)), int64s({start}), int64s({end}), int64s({dim}), int64s({int_of(n, 4)})}, {out(n->output())});
  }

  // torch's pads run from the last axis backwards, (before, after) each; ONNX's list every
  // axis's before, then every axis's after.
  void pad(const Node* n) {
    const auto& in = shape(n->input(0));
    const auto amounts = ints_of(n, 1);
    std::string mode = "constant";
    double value = 0;
    if (n->kind() == c10::aten::pad) {
      auto m = graph_constant(n->input(2));
      if (!m || !m->isString()) throw Error(refused(n, "takes a computed mode"));
      mode = m->toStringRef();
      if (mode == "replicate") mode = "edge";
      if (mode != "constant" && mode != "reflect" && mode != "edge") throw Error(refused(n, "pads in mode '" + mode + "'"));
      if (auto v = optional_number(n, 3)) value = *v;
    } else {
      value = number_of(n, 2);
    }
    if (amounts.size() % 2 != 0 || amounts.size() / 2 > in.size()) throw Error(refused(n, "has an odd pad list"));
    std::vector<std::int64_t> pads(2 * in.size(), 0);
    for (std::size_t i = 0; i < amounts.size() / 2; ++i) {
      const std::size_t axis = in.size() - 1 - i;
      pads[axis] = amounts[2 * i];
      pads[in.size() + axis] = amounts[2 * i + 1];
    }
    if (std::any_of(pads.begin(), pads.end(), [](std::int64_t p) { return p < 0; })) throw Error(refused(n, "crops (negative padding)"));
    auto* p = unary(n, "Pad");  // opset 10: amounts and value are attributes
    set_string(p, "mode", mode);
    set_ints(p, "pads", pads);
    if (mode == "constant") set_float(p, "value", static_cast<float>(value));
  }

  const SpecialisedGraph& g_;
  bool dynamic_batch_;
  onnx::ModelProto model_;
  onnx::GraphProto* graph_ = nullptr;
  std::unordered_map<const Value*, std::string> names_;
  std::unordered_map<const Value*, const Node*> splits_;
  int counter_ = 0;
};

struct Converted {
  onnx::ModelProto model;
  int nodes = 0;
  bool dynamic_batch = true;
};

Converted convert(const ModelCard& card) {
  const torch::jit::Module module = load_torchscript_module(card, "onnx export");
  torch::jit::Module frozen;
  try {
    frozen = torch::jit::freeze(module);
  } catch (const std::exception& e) {
    throw Error(unsupported("onnx export: " + card.name + " cannot be frozen: " + first_meaningful_line(e.what())));
  }
  const std::vector<std::int64_t> input = {1, card.input.channels(), card.input.height, card.input.width};
  for (const bool fixed_batch : {false, true}) {
    SpecialisedGraph g;
    try {
      g = specialise(frozen, input, fixed_batch);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      if (!fixed_batch) continue;  // a model that runs only at its written batch size
      throw Error(invalid_argument("onnx export: " + card.name + " does not run on its card's input shape: " + first_meaningful_line(e.what())));
    }
    try {
      OnnxWriter writer(g, card.name, !fixed_batch);
      Converted c{writer.write(), 0, !fixed_batch};
      c.nodes = writer.nodes();
      return c;
    } catch (const BatchDependent&) {
      if (fixed_batch) throw Error(internal_error("onnx export: a batch-dependent size remained at a fixed batch"));
    }
  }
  throw Error(internal_error("onnx export: no batch mode converted"));
}

std::vector<float> random_inputs(const InputContract& in, int count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> pixel(in.range_min, in.range_max);
  const std::size_t plane = static_cast<std::size_t>(in.height) * in.width;
  std::vector<float> x(static_cast<std::size_t>(count) * in.channels() * plane);
  for (std::size_t i = 0; i < x.size(); ++i) {
    float v = pixel(rng);
    const std::size_t c = (i / plane) % static_cast<std::size_t>(in.channels());
    if (c < in.mean.size() && c < in.std.size()) v = (v - in.mean[c]) / in.std[c];
    x[i] = v;
  }
  return x;
}

}  // namespace

Expected<LogitAgreement> compare_logits(const ModelCard& reference, const ModelCard& other, int inputs, std::uint64_t seed) {
  if (inputs <= 0) return invalid_argument("compare_logits: the number of inputs must be positive");
  if (reference.classes != other.classes || reference.input.channels() != other.input.channels() ||
      reference.input.height != other.input.height || reference.input.width != other.input.width) {
    return invalid_argument("compare_logits: " + reference.name + " and " + other.name + " differ in input shape or classes");
  }
  LoadOptions load;
  load.threads = 1;
  auto a = load_classifier(reference, load);
  if (!a) return a.status();
  auto b = load_classifier(other, load);
  if (!b) return b.status();
  const auto x = random_inputs(reference.input, inputs, seed);
  const std::size_t per_input = x.size() / static_cast<std::size_t>(inputs);
  LogitAgreement agreement;
  int same_top1 = 0;
  for (int i = 0; i < inputs; ++i) {
    auto la = (*a)->infer(x.data() + i * per_input, 1);
    if (!la) return la.status();
    auto lb = (*b)->infer(x.data() + i * per_input, 1);
    if (!lb) return lb.status();
    double scale = 0, diff = 0;
    for (std::size_t k = 0; k < la->size(); ++k) {
      scale = std::max(scale, std::abs(static_cast<double>((*la)[k])));
      diff = std::max(diff, std::abs(static_cast<double>((*la)[k]) - (*lb)[k]));
    }
    if (!std::isfinite(diff)) diff = std::numeric_limits<double>::infinity();
    agreement.max_relative_error = std::max(agreement.max_relative_error, diff / std::max(scale, 1e-12));
    same_top1 += std::max_element(la->begin(), la->end()) - la->begin() == std::max_element(lb->begin(), lb->end()) - lb->begin();
  }
  agreement.inputs = inputs;
  agreement.top1_agreement = static_cast<double>(same_top1) / inputs;
  return agreement;
}

Expected<OnnxExport> export_onnx(const ModelCard& card, const std::string& onnx_path, const OnnxExportOptions& options) {
  if (card.format != ModelFormat::kTorchScript) return invalid_argument("onnx export: " + card.name + " is not a TorchScript model");
  const std::filesystem::path path(onnx_path);
  if (path.extension() != ".onnx") return invalid_argument("onnx export: the output must be a .onnx file: " + onnx_path);
  if (options.check_inputs < 1) return invalid_argument("onnx export: at least one check input is needed");
  return capture([&]() -> OnnxExport {
    Converted converted = convert(card);
    converted.model.set_doc_string("exported by edgefleet from " + card.file + " (" + card.name + ")");
    try {
      onnx::checker::check_model(converted.model);
    } catch (const std::exception& e) {
      throw Error(internal_error("onnx export: the written model fails ONNX's checker: " + first_meaningful_line(e.what())));
    }
    std::string bytes;
    if (!converted.model.SerializeToString(&bytes)) throw Error(internal_error("onnx export: cannot serialise the model"));
    if (!path.parent_path().empty()) std::filesystem::create_directories(path.parent_path());
    write_file_atomically(bytes, onnx_path);

    OnnxExport result;
    result.nodes = converted.nodes;
    result.dynamic_batch = converted.dynamic_batch;
    ModelCard onnx = card;
    onnx.name = card.name + "-onnx";
    onnx.file = path.filename().string();
    onnx.format = ModelFormat::kOnnx;
    onnx.sha256 = sha256_hex(bytes.data(), bytes.size());
    onnx.accuracy.reset();  // measured, not inherited: `edgefleet eval --model NAME.onnx --record`
    onnx.latency_ms = nlohmann::json();
    onnx.raw = nlohmann::json();
    result.card_path = (path.parent_path() / (path.stem().string() + ".onnx.json")).string();
    onnx.card_path = result.card_path;
    onnx.provenance = {{"exported_from", card.file},
                       {"source_sha256", card.sha256},
                       {"exporter", "edgefleet onnx export, opset " + std::to_string(kOnnxOpset)},
                       {"batch", converted.dynamic_batch ? "dynamic" : "fixed at 1 (the program writes its batch size)"}};
    auto check = compare_logits(card, onnx, options.check_inputs, options.seed);
    if (!check || check->max_relative_error > options.tolerance) {
      std::error_code ignored;
      std::filesystem::remove(onnx_path, ignored);
      if (!check) throw Error(Status(check.status().code(), "onnx export: the export does not run: " + check.status().message()));
      throw Error(internal_error("onnx export: " + card.name + ": OpenCV DNN's logits differ from libtorch's by " +
                                 std::to_string(check->max_relative_error) + " (relative; tolerance " + std::to_string(options.tolerance) + ")"));
    }
    result.check = *check;
    onnx.provenance["check"] = {{"engine", "opencv-dnn against libtorch"},
                                {"inputs", check->inputs},
                                {"max_relative_error", check->max_relative_error},
                                {"top1_agreement", check->top1_agreement}};
    if (auto written = write_card(onnx, result.card_path); !written.is_ok()) throw Error(written);
    result.card = onnx;
    return result;
  });
}

}  // namespace edgefleet
