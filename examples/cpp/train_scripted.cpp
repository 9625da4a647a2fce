// Loads a TorchScript model saved from Python that uses artderiv ops, then
// trains it with SGD in C++: forward, artificial-derivative backward, step.
// Exits non-zero unless the loss falls (so CTest checks it).
//
//   train_scripted artderiv_mlp.pt
#include <torch/script.h>
#include <torch/torch.h>

#include <cmath>
#include <iostream>

#include <artderiv.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: train_scripted MODEL.pt\n";
    return 2;
  }
  // The op library registered itself at load time (linked with --no-as-needed).
  if (!c10::Dispatcher::singleton().findSchema({"artderiv::activation", ""})) {
    std::cerr << "artderiv ops are not registered: link the artderiv library\n";
    return 1;
  }
  torch::jit::Module model = torch::jit::load(argv[1]);
  model.train();

  // Regression target: y = sin(x0) + x1*x2 - |x3| on 256 fixed points.
  torch::manual_seed(0);
  const torch::Tensor x = torch::randn({256, 4});
  const torch::Tensor y = (x.select(1, 0).sin() + x.select(1, 1) * x.select(1, 2) -
                           x.select(1, 3).abs())
                              .unsqueeze(1);

  std::vector<torch::Tensor> params;
  for (const auto& p : model.parameters()) params.push_back(p);
  torch::optim::SGD sgd(params, torch::optim::SGDOptions(0.01).momentum(0.9));

  float first = 0.f, last = 0.f;
  for (int step = 0; step <= 200; ++step) {
    sgd.zero_grad();
    torch::Tensor loss = torch::mse_loss(model.forward({x}).toTensor(), y);
    loss.backward();
    sgd.step();
    last = loss.item<float>();
    if (step == 0) first = last;
    if (step % 40 == 0) std::cout << "step " << step << "  loss " << last << "\n";
  }

  // The C++ API gives the same op: the artificial derivative of ReLU is sigma(x).
  torch::Tensor probe = torch::tensor({-2.0, 0.0, 3.0}, torch::requires_grad());
  artderiv::activation(probe, "relu", {}, "sigmoid", {1.0}).sum().backward();
  const bool derivative_ok = torch::allclose(probe.grad(), torch::sigmoid(probe.detach()));

  std::cout << "loss " << first << " -> " << last << (last < 0.5f * first ? "  (falling)" : "  (NOT falling)")
            << "; relu backward == sigmoid(x): " << (derivative_ok ? "yes" : "NO") << "\n";
  return (std::isfinite(last) && last < 0.5f * first && derivative_ok) ? 0 : 1;
}
