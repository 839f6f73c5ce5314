#include "zoo/torchscript_import.h"

#include <cmath>
#include <map>
#include <optional>

#include "zoo/module_builder.h"

namespace edgefleet {
namespace {

using torch::jit::Module;

// One step of the flattened forward pass.
struct Op {
  enum Kind { kNorm, kConvBnAct, kConv, kBatchNorm, kActivation, kMaxPool, kMean, kLinear } kind;
  Module module;
  std::string where;               // the module path, for messages
  std::string activation;          // kActivation: relu | relu6 | leaky
  double slope = 0.0;              // leaky
};

std::string type_name(const Module& m) {
  const auto& name = m.type()->name();
  return name ? name->name() : std::string("?");
}

std::vector<std::int64_t> ints_of(const c10::IValue& v) {
  if (v.isInt()) return {v.toInt()};
  if (v.isIntList()) return v.toIntVector();
  std::vector<std::int64_t> out;
  if (v.isTuple()) {
    for (const auto& e : v.toTupleRef().elements()) out.push_back(e.toInt());
  }
  return out;
}

// A square parameter (kernel, stride, padding) from a module constant.
int square_constant(const Module& m, const std::string& name, const std::string& where) {
  if (!m.type()->hasConstant(name)) throw Error(unsupported(where + ": no '" + name + "' constant"));
  const auto values = ints_of(m.type()->getConstant(name));
  if (values.empty() || (values.size() == 2 && values[0] != values[1]) || values.size() > 2) {
    throw Error(unsupported(where + ": non-square " + name));
  }
  return static_cast<int>(values[0]);
}

torch::Tensor tensor_attr(const Module& m, const std::string& name) {
  if (!m.hasattr(name)) return {};
  const auto v = m.attr(name);
  return v.isTensor() ? v.toTensor() : torch::Tensor();
}

bool has_child(const Module& m, const std::string& name) {
  for (const auto& child : m.named_children()) {
    if (child.name == name) return true;
  }
  return false;
}

class Flattener {
 public:
  std::vector<Op> ops;

  void module(const Module& m, const std::string& where) {
    const std::string type = type_name(m);
    if (has_child(m, "conv") && has_child(m, "bn")) return push(Op::kConvBnAct, m, where);
    if (type == "Conv2d") return push(Op::kConv, m, where);
    if (type == "BatchNorm2d") return push(Op::kBatchNorm, m, where);
    if (type == "Linear") return push(Op::kLinear, m, where);
    if (type == "MaxPool2d") return push(Op::kMaxPool, m, where);
    if (type == "Dropout" || type == "Identity" || type == "Flatten") return;
    if (type == "ReLU") return activation(m, where, "relu", 0.0);
    if (type == "ReLU6") return activation(m, where, "relu6", 0.0);
    if (type == "LeakyReLU") return activation(m, where, "leaky", m.type()->getConstant("negative_slope").toDouble());
    if (type == "Hardtanh") {
      if (m.type()->getConstant("min_val").toDouble() != 0.0 || m.type()->getConstant("max_val").toDouble() != 6.0) {
        throw Error(unsupported(where + ": Hardtanh other than ReLU6"));
      }
      return activation(m, where, "relu6", 0.0);
    }
    const bool children = m.named_children().size() > 0;
    if (!children && ((tensor_attr(m, "scale").defined() && tensor_attr(m, "shift").defined()) ||
                      (tensor_attr(m, "mean").defined() && tensor_attr(m, "std").defined()))) {
      return push(Op::kNorm, m, where);
    }
    graph(m, where);
  }

 private:
  void push(Op::Kind kind, const Module& m, const std::string& where) { ops.push_back({kind, m, where, "", 0.0}); }
  void activation(const Module& m, const std::string& where, const std::string& name, double slope) {
    ops.push_back({Op::kActivation, m, where, name, slope});
  }

  // Walks m.forward's graph: calls of submodules in order, and the few ops allowed between.
  void graph(const Module& m, const std::string& where) {
    const auto g = m.get_method("forward").graph();
    std::map<const torch::jit::Value*, std::pair<Module, std::string>> modules;
    modules.emplace(g->inputs()[0], std::make_pair(m, where));
    const std::string label = where.empty() ? type_name(m) : where + " (" + type_name(m) + ")";
    for (torch::jit::Node* node : g->nodes()) {
      const auto kind = node->kind();
      if (kind == c10::prim::GetAttr) {
        const auto parent = modules.find(node->input(0));
        const auto cls = node->output()->type()->cast<c10::ClassType>();
        if (parent != modules.end() && cls && cls->is_module()) {
          const std::string name = node->s(c10::attr::name);
          modules.emplace(node->output(), std::make_pair(parent->second.first.attr(name).toModule(),
                                                         parent->second.second.empty() ? name : parent->second.second + "." + name));
        }
      } else if (kind == c10::prim::CallMethod) {
        const auto target = modules.find(node->input(0));
        if (target == modules.end() || node->s(c10::attr::name) != "forward") {
          throw Error(unsupported(label + ": calls method '" + node->s(c10::attr::name) + "'"));
        }
        module(target->second.first, target->second.second);
      } else if (kind == c10::aten::mean) {
        ops.push_back({Op::kMean, m, where, "", 0.0});
      } else if (kind == c10::aten::relu) {
        ops.push_back({Op::kActivation, m, where, "relu", 0.0});
      } else if (kind == c10::prim::Constant || kind == c10::prim::ListConstruct || kind == c10::aten::flatten ||
                 kind == c10::aten::dropout) {
        continue;
      } else {
        throw Error(unsupported(label + ": operation " + std::string(kind.toQualString()) + " is not a sequential classifier's"));
      }
    }
  }
};

struct ImportedConv {
  torch::Tensor w, g, b, rm, rv;
};

// Reads a conv module's geometry into `layer`; returns its weight and bias (may be undefined).
std::pair<torch::Tensor, torch::Tensor> read_conv(const Module& conv, const std::string& where, int in_channels, LayerSpec& layer) {
  const torch::Tensor w = tensor_attr(conv, "weight");
  if (!w.defined() || w.dim() != 4) throw Error(unsupported(where + ": not a 2-D convolution"));
  layer.kind = LayerKind::kConv;
  layer.kernel = square_constant(conv, "kernel_size", where);
  layer.stride = square_constant(conv, "stride", where);
  if (square_constant(conv, "dilation", where) != 1) throw Error(unsupported(where + ": dilated convolution"));
  const auto groups = conv.type()->getConstant("groups").toInt();
  layer.out = static_cast<int>(w.size(0));
  if (w.size(1) * groups != in_channels) {
    throw Error(unsupported(where + ": reads " + std::to_string(w.size(1) * groups) + " channels where " + std::to_string(in_channels) + " arrive"));
  }
  if (groups != 1) {
    if (groups != in_channels || w.size(0) != in_channels) throw Error(unsupported(where + ": grouped convolution (only depthwise is supported)"));
    layer.depthwise = true;
  }
  const int padding = square_constant(conv, "padding", where);
  if (padding != layer.kernel / 2 && !(padding == 0 && layer.padding == "same")) {
    throw Error(unsupported(where + ": padding " + std::to_string(padding) + " with a " + std::to_string(layer.kernel) + "x" +
                            std::to_string(layer.kernel) + " kernel"));
  }
  return {w, tensor_attr(conv, "bias")};
}

ImportedConv read_batch_norm(const Module& bn, const std::string& where, const torch::Tensor& conv_bias, std::optional<double>& eps) {
  ImportedConv c;
  c.g = tensor_attr(bn, "weight");
  c.b = tensor_attr(bn, "bias");
  c.rm = tensor_attr(bn, "running_mean");
  c.rv = tensor_attr(bn, "running_var");
  if (!c.g.defined() || !c.b.defined() || !c.rm.defined() || !c.rv.defined()) {
    throw Error(unsupported(where + ": batch norm without affine parameters or running statistics"));
  }
  const double e = bn.type()->hasConstant("eps") ? bn.type()->getConstant("eps").toDouble() : tensor_attr(bn, "eps").item<double>();
  if (eps && std::abs(*eps - e) > 1e-12) throw Error(unsupported(where + ": batch norms with different epsilons"));
  eps = e;
  // A conv bias before batch norm only shifts the mean the norm subtracts.
  if (conv_bias.defined()) c.rm = c.rm - conv_bias;
  return c;
}

void apply_activation(const Op& op, LayerSpec& layer, std::optional<double>& slope) {
  if (layer.activation != "none") throw Error(unsupported(op.where + ": two activations in a row"));
  layer.activation = op.activation;
  if (op.activation == "leaky") {
    if (slope && std::abs(*slope - op.slope) > 1e-9) throw Error(unsupported(op.where + ": leaky ReLUs with different slopes"));
    slope = op.slope;
  }
}

}  // namespace

Expected<ImportedModel> import_sequential_classifier(const Module& source, int input_size) {
  return capture([&]() -> ImportedModel {
    Flattener flattener;
    flattener.module(source, "");
    const std::vector<Op>& ops = flattener.ops;

    ArchSpec spec;
    spec.family = "imported";
    spec.input_size = input_size;
    std::vector<ImportedConv> convs;  // per spec layer (empty for pools)
    std::optional<double> eps, slope;
    torch::Tensor head_w, head_b;
    bool mean_seen = false;
    int channels = 0;
    auto append_conv = [&](const LayerSpec& layer, const ImportedConv& c) {
      if (spec.layers.empty()) spec.in_channels = channels;
      spec.layers.push_back(layer);
      convs.push_back(c);
      channels = layer.out;
    };
    std::size_t i = 0;
    if (!ops.empty() && ops[0].kind == Op::kNorm) {
      const Module& m = ops[0].module;
      torch::Tensor scale = tensor_attr(m, "scale"), shift = tensor_attr(m, "shift");
      if (!scale.defined()) {
        scale = 1.0 / tensor_attr(m, "std");
        shift = -tensor_attr(m, "mean") * scale;
      }
      scale = scale.flatten();
      shift = shift.flatten();
      if ((scale - scale[0]).abs().max().item<double>() > 1e-7 || (shift - shift[0]).abs().max().item<double>() > 1e-7) {
        throw Error(unsupported(ops[0].where + ": per-channel input normalisation (only one scale and shift for all channels)"));
      }
      // x * scale + shift == (x - mean) / std
      spec.std = static_cast<float>(1.0 / scale[0].item<double>());
      spec.mean = static_cast<float>(-shift[0].item<double>() / scale[0].item<double>());
      ++i;
    }
    for (; i < ops.size(); ++i) {
      const Op& op = ops[i];
      if (mean_seen && op.kind != Op::kConv && op.kind != Op::kLinear) {
        throw Error(unsupported(op.where + ": only the classifier may follow the global average pool"));
      }
      switch (op.kind) {
        case Op::kNorm:
          throw Error(unsupported(op.where + ": input normalisation after the first layer"));
        case Op::kConvBnAct: {
          LayerSpec layer;
          const Module conv = op.module.attr("conv").toModule();
          if (op.module.hasattr("sym") && op.module.attr("sym").isBool() && !op.module.attr("sym").toBool()) layer.padding = "same";
          if (channels == 0) channels = static_cast<int>(tensor_attr(conv, "weight").size(1));
          auto [w, bias] = read_conv(conv, op.where + ".conv", channels, layer);
          ImportedConv c = read_batch_norm(op.module.attr("bn").toModule(), op.where + ".bn", bias, eps);
          c.w = w;
          layer.activation = "none";
          const std::string act = op.module.hasattr("act") && op.module.attr("act").isString() ? op.module.attr("act").toStringRef() : "none";
          if (act == "relu" || act == "relu6" || act == "leaky") {
            const double alpha = act == "leaky" ? op.module.attr("alpha").toDouble() : 0.0;
            apply_activation({Op::kActivation, op.module, op.where, act, alpha}, layer, slope);
          } else if (act != "none" && act != "linear") {
            throw Error(unsupported(op.where + ": activation '" + act + "'"));
          }
          append_conv(layer, c);
          break;
        }
        case Op::kConv: {
          const torch::Tensor w = tensor_attr(op.module, "weight");
          if (!w.defined() || w.dim() != 4) throw Error(unsupported(op.where + ": a Conv2d without a 4-D weight"));
          if (channels == 0) channels = static_cast<int>(w.size(1));
          const bool last = i + 1 == ops.size();
          const bool before_mean = i + 1 < ops.size() && ops[i + 1].kind == Op::kMean && i + 2 == ops.size();
          if (mean_seen || ((last || before_mean) && w.size(2) == 1 && w.size(3) == 1)) {
            // The classifier: a 1x1 conv commutes with the global average pool, so it is a linear layer.
            if (w.size(1) != channels) throw Error(unsupported(op.where + ": classifier reads " + std::to_string(w.size(1)) + " channels"));
            head_w = w.flatten(1);
            head_b = tensor_attr(op.module, "bias");
            if (before_mean) mean_seen = true, ++i;
            break;
          }
          if (i + 1 >= ops.size() || ops[i + 1].kind != Op::kBatchNorm) throw Error(unsupported(op.where + ": a convolution without batch norm"));
          LayerSpec layer;
          auto [weight, bias] = read_conv(op.module, op.where, channels, layer);
          ImportedConv c = read_batch_norm(ops[i + 1].module, ops[i + 1].where, bias, eps);
          c.w = weight;
          ++i;
          layer.activation = "none";
          if (i + 1 < ops.size() && ops[i + 1].kind == Op::kActivation) apply_activation(ops[++i], layer, slope);
          append_conv(layer, c);
          break;
        }
        case Op::kBatchNorm:
          throw Error(unsupported(op.where + ": batch norm not after a convolution"));
        case Op::kActivation:
          throw Error(unsupported(op.where + ": activation not after a convolution and batch norm"));
        case Op::kMaxPool: {
          LayerSpec layer;
          layer.kind = LayerKind::kMaxPool;
          layer.kernel = square_constant(op.module, "kernel_size", op.where);
          layer.stride = op.module.type()->hasConstant("stride") && !ints_of(op.module.type()->getConstant("stride")).empty()
                             ? square_constant(op.module, "stride", op.where)
                             : layer.kernel;
          if (square_constant(op.module, "padding", op.where) != 0 || square_constant(op.module, "dilation", op.where) != 1) {
            throw Error(unsupported(op.where + ": padded or dilated max pool"));
          }
          layer.ceil_mode = op.module.type()->getConstant("ceil_mode").toBool();
          spec.layers.push_back(layer);
          convs.emplace_back();
          break;
        }
        case Op::kMean:
          mean_seen = true;
          break;
        case Op::kLinear: {
          const torch::Tensor w = tensor_attr(op.module, "weight");
          if (!mean_seen || !w.defined() || w.size(1) != channels) throw Error(unsupported(op.where + ": a linear layer that is not the classifier"));
          head_w = w;
          head_b = tensor_attr(op.module, "bias");
          break;
        }
      }
    }
    if (spec.layers.empty() || !head_w.defined() || !mean_seen) {
      throw Error(unsupported("not a sequential classifier: expected convolutions, a global average pool and a classifier"));
    }
    spec.classes = static_cast<int>(head_w.size(0));
    if (eps) spec.bn_eps = *eps;
    if (slope) spec.leaky_slope = *slope;

    ImportedModel imported;
    imported.spec = spec;
    imported.module = build_module(spec, 0);
    {
      torch::NoGradGuard no_grad;
      auto set = [&](const std::string& name, const torch::Tensor& value) {
        auto target = imported.module.attr(name).toTensor();
        if (target.sizes() != value.sizes()) throw Error(internal_error("import: " + name + " has the wrong shape"));
        target.copy_(value);
      };
      for (std::size_t l = 0; l < spec.layers.size(); ++l) {
        if (spec.layers[l].kind != LayerKind::kConv) continue;
        const std::string name = "l" + std::to_string(l);
        set(name + "_w", convs[l].w);
        set(name + "_g", convs[l].g);
        set(name + "_b", convs[l].b);
        set(name + "_rm", convs[l].rm);
        set(name + "_rv", convs[l].rv);
      }
      set("fc_w", head_w);
      set("fc_b", head_b.defined() ? head_b : torch::zeros({spec.classes}));
    }
    imported.module.eval();

    // The check: same logits as the source.
    Module reference = source.clone();
    reference.eval();
    torch::NoGradGuard no_grad;
    const auto x = torch::rand({2, spec.in_channels, input_size, input_size}, at::make_generator<at::CPUGeneratorImpl>(7));
    const auto expected = reference.forward({x}).toTensor();
    const auto got = imported.module.forward({x}).toTensor();
    if (expected.sizes() != got.sizes()) throw Error(unsupported("import: the rebuilt model's output shape differs from the source's"));
    imported.max_logit_difference = (expected - got).abs().max().item<double>();
    const double scale = std::max(1.0, expected.abs().max().item<double>());
    if (!(imported.max_logit_difference <= 1e-3 * scale)) {
      throw Error(unsupported("import: the rebuilt model's logits differ from the source's by " + std::to_string(imported.max_logit_difference) +
                              " (the graph has something the importer does not model)"));
    }
    return imported;
  });
}

}  // namespace edgefleet
