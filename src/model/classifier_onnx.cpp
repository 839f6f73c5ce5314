// ONNX models through OpenCV DNN, the second engine.
#include <algorithm>

#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/dnn.hpp>


#include "model/classifier_engines.h"
#include "core/thread_count.h"

namespace edgefleet {
namespace {

class OnnxClassifier final : public Classifier {
 public:
  OnnxClassifier(ModelCard card, cv::dnn::Net net) : card_(std::move(card)), net_(std::move(net)) {}

  const ModelCard& card() const override { return card_; }
  std::string engine() const override { return one_at_a_time_ ? "opencv-dnn (batch 1: fixed-batch export)" : "opencv-dnn"; }

  // For exports whose batch axis is fixed at 1 (OpenCV cannot reshape them): batches are
  // then run one input at a time.
  void run_one_at_a_time() { one_at_a_time_ = true; }

  Expected<std::vector<float>> infer(const float* batch, int n) override {
    if (n <= 0) return invalid_argument("infer: batch size must be positive, got " + std::to_string(n));
    if (one_at_a_time_ && n > 1) {
      const auto& in = card_.input;
      const std::size_t per_input = static_cast<std::size_t>(in.channels()) * in.height * in.width;
      std::vector<float> out;
      for (int i = 0; i < n; ++i) {
        auto one = infer_batch(batch + i * per_input, 1);
        if (!one) return one.status();
        out.insert(out.end(), one->begin(), one->end());
      }
      return out;
    }
    return infer_batch(batch, n);
  }

  Expected<std::vector<float>> infer_batch(const float* batch, int n) {
    try {
      const auto& in = card_.input;
      const int shape[] = {n, in.channels(), in.height, in.width};
      cv::Mat blob(4, shape, CV_32F, const_cast<float*>(batch));
      net_.setInput(blob);
      cv::Mat output = net_.forward();
      if (output.total() != static_cast<std::size_t>(n) * card_.classes) {
        return invalid_argument(card_.name + ": model returned " + std::to_string(output.total()) + " values, expected " +
                                std::to_string(n) + " x " + std::to_string(card_.classes));
      }
      cv::Mat flat = output.reshape(1, 1);
      if (!flat.isContinuous()) flat = flat.clone();
      return std::vector<float>(flat.ptr<float>(), flat.ptr<float>() + flat.total());
    } catch (const cv::Exception& e) {
      return internal_error(card_.name + ": OpenCV DNN failed: " + first_meaningful_line(e.err));
    }
  }

  Expected<ModelCost> cost() override {
    try {
      const auto& in = card_.input;
      ModelCost cost;
      const cv::dnn::MatShape shape = {1, in.channels(), in.height, in.width};
      // getFLOPS counts a multiply-add as two operations.
      cost.macs = net_.getFLOPS(shape) / 2;
      std::vector<int> layer_ids;
      std::vector<std::size_t> weights, blobs;
      net_.getMemoryConsumption(shape, layer_ids, weights, blobs);
      for (std::size_t w : weights) cost.params += static_cast<std::int64_t>(w / sizeof(float));
      return cost;
    } catch (const cv::Exception& e) {
      return internal_error(card_.name + ": OpenCV DNN cannot count cost: " + first_meaningful_line(e.err));
    }
  }

  // At most one thread per core: OpenCV's TBB pool cannot grow past it (it warns instead),
  // and a device profile's larger count changes nothing in the answers.
  void set_threads(int threads) override {
    cv::setNumThreads(std::min(resolve_thread_count(threads), resolve_thread_count(0)));
  }

 private:
  ModelCard card_;
  cv::dnn::Net net_;
  bool one_at_a_time_ = false;
};

}  // namespace

Expected<std::unique_ptr<Classifier>> load_onnx_classifier(const ModelCard& card, const LoadOptions& options) {
  if (options.precision != Precision::kFp32 || options.ceil_mode != CeilMode::kAsSaved) {
    return unsupported(card.name + ": OpenCV DNN runs the ONNX model as exported; precision and ceil mode are "
                       "simulated on TorchScript models only");
  }
  cv::dnn::Net net;
  // OpenCV would also print its own multi-line report; the Status below carries the reason.
  const auto previous_level = cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
  try {
    net = cv::dnn::readNetFromONNX(card.model_path());
    cv::utils::logging::setLogLevel(previous_level);
  } catch (const cv::Exception& e) {
    cv::utils::logging::setLogLevel(previous_level);
    return corrupt(card.model_path() + ": not a loadable ONNX model (" + first_meaningful_line(e.err) + ")");
  }
  if (net.empty()) return corrupt(card.model_path() + ": OpenCV DNN loaded an empty network");
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  auto classifier = std::make_unique<OnnxClassifier>(card, std::move(net));
  classifier->set_threads(options.threads);
  // Some exports load but cannot run (an op OpenCV implements differently): say so now, not
  // at the first batch of a long run.
  const auto& in = card.input;
  std::vector<float> probe(2 * static_cast<std::size_t>(in.channels()) * in.height * in.width, 0.5f);
  if (auto ran = classifier->infer(probe.data(), 1); !ran) {
    return unsupported(card.model_path() + ": OpenCV DNN cannot run this ONNX model: " + ran.status().message());
  }
  if (!classifier->infer(probe.data(), 2)) classifier->run_one_at_a_time();
  return std::unique_ptr<Classifier>(std::move(classifier));
}

}  // namespace edgefleet
