// unifmir libtorch loader: load a TorchScript file with the libtorch it is linked against (the
// project links it against libtorch 2.0.0, deepImageJ's newest PyTorch engine), run forward on
// the given inputs and compare the outputs with expected ones.
//
// Built and driven by unifmir/export/libtorch_check.py; not meant to be run by hand, but it can be:
//
//   libtorch_loader MODEL.pt --input A.bin [--input B.bin ...] [--expected E.bin ...]
//                   [--atol 1e-4] [--rtol 1e-4] [--threads N] [--save-output-dir DIR]
//
// Tensor files ("UFMT" format, all little-endian, chosen over torch.save/pickle_load so that the
// exchange does not depend on the serialisation format of either torch version):
//   char[4] magic "UFMT" | uint32 version (1) | uint32 dtype | uint32 ndim | int64 shape[ndim] | data
//   dtype: 0 float32, 1 float64, 2 int32, 3 int64, 4 uint8, 5 bool (1 byte)
//
// Prints exactly one JSON line on stdout:
//   {"loaded": bool, "ran": bool, "ok": bool, "max_abs_diff": number|null,
//    "output_shapes": [[...], ...], "message": "...", "libtorch_version": "x.y.z"}
// Exit status: 0 when ok, 1 when the comparison failed, 2 when loading or running failed,
// 3 on bad usage or unreadable tensor files.

#include <torch/script.h>
#include <torch/version.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

std::string json_escape(const std::string& s) {
  std::ostringstream o;
  for (unsigned char c : s) {
    switch (c) {
      case '"': o << "\\\""; break;
      case '\\': o << "\\\\"; break;
      case '\n': o << "\\n"; break;
      case '\r': o << "\\r"; break;
      case '\t': o << "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          o << buf;
        } else {
          o << c;  // UTF-8 bytes pass through unchanged
        }
    }
  }
  return o.str();
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream o;
  o.precision(17);
  o << v;
  return o.str();
}

struct Result {
  bool loaded = false;
  bool ran = false;
  bool ok = false;
  bool have_diff = false;
  double max_abs_diff = 0.0;
  std::vector<std::vector<int64_t>> output_shapes;
  std::string message;
};

void print_result(const Result& r) {
  std::ostringstream o;
  o << "{\"loaded\": " << (r.loaded ? "true" : "false") << ", \"ran\": " << (r.ran ? "true" : "false")
    << ", \"ok\": " << (r.ok ? "true" : "false")
    << ", \"max_abs_diff\": " << (r.have_diff ? json_number(r.max_abs_diff) : std::string("null"))
    << ", \"output_shapes\": [";
  for (size_t i = 0; i < r.output_shapes.size(); ++i) {
    if (i) o << ", ";
    o << "[";
    for (size_t j = 0; j < r.output_shapes[i].size(); ++j) {
      if (j) o << ", ";
      o << r.output_shapes[i][j];
    }
    o << "]";
  }
  o << "], \"message\": \"" << json_escape(r.message) << "\", \"libtorch_version\": \""
    << TORCH_VERSION << "\"}";
  std::cout << o.str() << std::endl;
}

at::ScalarType dtype_from_code(uint32_t code) {
  switch (code) {
    case 0: return at::kFloat;
    case 1: return at::kDouble;
    case 2: return at::kInt;
    case 3: return at::kLong;
    case 4: return at::kByte;
    case 5: return at::kBool;
  }
  throw std::runtime_error("unknown dtype code " + std::to_string(code));
}

uint32_t code_from_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return 0;
    case at::kDouble: return 1;
    case at::kInt: return 2;
    case at::kLong: return 3;
    case at::kByte: return 4;
    case at::kBool: return 5;
    default: break;
  }
  throw std::runtime_error(std::string("cannot save output of dtype ") + c10::toString(t));
}

template <typename T>
void read_exact(std::ifstream& f, T* dst, size_t n, const std::string& path) {
  f.read(reinterpret_cast<char*>(dst), static_cast<std::streamsize>(n));
  if (!f || static_cast<size_t>(f.gcount()) != n) throw std::runtime_error("truncated tensor file " + path);
}

at::Tensor read_tensor(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open tensor file " + path);
  char magic[4];
  read_exact(f, magic, 4, path);
  if (std::memcmp(magic, "UFMT", 4) != 0) throw std::runtime_error("not a UFMT tensor file: " + path);
  uint32_t header[3];
  read_exact(f, header, sizeof(header), path);
  if (header[0] != 1) throw std::runtime_error("unsupported UFMT version in " + path);
  at::ScalarType dtype = dtype_from_code(header[1]);
  uint32_t ndim = header[2];
  if (ndim > 64) throw std::runtime_error("implausible ndim in " + path);
  std::vector<int64_t> shape(ndim);
  if (ndim) read_exact(f, shape.data(), sizeof(int64_t) * ndim, path);
  for (int64_t s : shape)
    if (s < 0) throw std::runtime_error("negative dimension in " + path);
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));
  size_t nbytes = static_cast<size_t>(t.numel()) * t.element_size();
  if (nbytes) read_exact(f, static_cast<char*>(t.data_ptr()), nbytes, path);
  f.peek();
  if (!f.eof()) throw std::runtime_error("trailing bytes in tensor file " + path);
  return t;
}

void write_tensor(const std::string& path, const at::Tensor& t_in) {
  at::Tensor t = t_in.contiguous().cpu();
  std::ofstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot write " + path);
  f.write("UFMT", 4);
  uint32_t header[3] = {1, code_from_dtype(t.scalar_type()), static_cast<uint32_t>(t.dim())};
  f.write(reinterpret_cast<const char*>(header), sizeof(header));
  for (int64_t s : t.sizes()) f.write(reinterpret_cast<const char*>(&s), sizeof(s));
  f.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * t.element_size()));
  if (!f) throw std::runtime_error("failed writing " + path);
}

// Flatten a forward() result (tensor, or nested tuples/lists of tensors) into a list of tensors.
void flatten(const c10::IValue& v, std::vector<at::Tensor>& out) {
  if (v.isTensor()) {
    out.push_back(v.toTensor());
  } else if (v.isTuple()) {
    for (const auto& e : v.toTupleRef().elements()) flatten(e, out);
  } else if (v.isTensorList()) {
    for (const at::Tensor& t : v.toTensorVector()) out.push_back(t);
  } else if (v.isList()) {
    for (const auto& e : v.toListRef()) flatten(e, out);
  } else {
    throw std::runtime_error("forward returned a value of type " + v.tagKind() +
                             "; expected a tensor or a tuple/list of tensors");
  }
}

}  // namespace

int main(int argc, char** argv) {
  Result r;
  std::string model_path, save_dir;
  std::vector<std::string> inputs, expected;
  double atol = 1e-4, rtol = 1e-4;
  int threads = 0;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument("missing value after " + a);
        return argv[++i];
      };
      if (a == "--input") inputs.push_back(next());
      else if (a == "--expected") expected.push_back(next());
      else if (a == "--atol") atol = std::stod(next());
      else if (a == "--rtol") rtol = std::stod(next());
      else if (a == "--threads") threads = std::stoi(next());
      else if (a == "--save-output-dir") save_dir = next();
      else if (!a.empty() && a[0] == '-') throw std::invalid_argument("unknown option " + a);
      else if (model_path.empty()) model_path = a;
      else throw std::invalid_argument("unexpected argument " + a);
    }
    if (model_path.empty()) throw std::invalid_argument("usage: libtorch_loader MODEL.pt --input X.bin ...");
  } catch (const std::exception& e) {
    r.message = std::string("bad arguments: ") + e.what();
    print_result(r);
    return 3;
  }

  if (threads > 0) {
    at::set_num_threads(threads);
  }

  std::vector<c10::IValue> args;
  std::vector<at::Tensor> expected_tensors;
  try {
    for (const auto& p : inputs) args.emplace_back(read_tensor(p));
    for (const auto& p : expected) expected_tensors.push_back(read_tensor(p));
  } catch (const std::exception& e) {
    r.message = std::string("reading tensors failed: ") + e.what();
    print_result(r);
    return 3;
  }

  torch::jit::script::Module module;
  try {
    module = torch::jit::load(model_path, torch::kCPU);
    module.eval();
    r.loaded = true;
  } catch (const std::exception& e) {  // torch::jit::ErrorReport and c10::Error derive from it
    r.message = std::string("torch::jit::load failed: ") + e.what();
    print_result(r);
    return 2;
  } catch (...) {
    r.message = "torch::jit::load failed with a non-standard exception";
    print_result(r);
    return 2;
  }

  std::vector<at::Tensor> outputs;
  try {
    torch::NoGradGuard no_grad;
    c10::IValue out = module.forward(args);
    flatten(out, outputs);
    r.ran = true;
  } catch (const std::exception& e) {
    r.message = std::string("forward failed: ") + e.what();
    print_result(r);
    return 2;
  } catch (...) {
    r.message = "forward failed with a non-standard exception";
    print_result(r);
    return 2;
  }

  for (const auto& t : outputs) r.output_shapes.emplace_back(t.sizes().vec());

  try {
    if (!save_dir.empty()) {
      for (size_t i = 0; i < outputs.size(); ++i)
        write_tensor(save_dir + "/output_" + std::to_string(i) + ".bin", outputs[i]);
    }
  } catch (const std::exception& e) {
    r.message = std::string("saving outputs failed: ") + e.what();
    print_result(r);
    return 3;
  }

  if (expected_tensors.empty()) {
    r.ok = true;
    r.message = "loaded and ran; no expected outputs given";
    print_result(r);
    return 0;
  }

  std::ostringstream msg;
  bool ok = true;
  if (expected_tensors.size() != outputs.size()) {
    ok = false;
    msg << "forward returned " << outputs.size() << " tensor(s), expected " << expected_tensors.size() << "; ";
  }
  size_t n = std::min(outputs.size(), expected_tensors.size());
  for (size_t i = 0; i < n; ++i) {
    const at::Tensor got = outputs[i].to(at::kDouble);
    const at::Tensor want = expected_tensors[i].to(at::kDouble);
    if (got.sizes() != want.sizes()) {
      ok = false;
      msg << "output " << i << " has shape " << got.sizes() << ", expected " << want.sizes() << "; ";
      continue;
    }
    if (got.numel() == 0) continue;
    at::Tensor diff = (got - want).abs();
    // NaN anywhere (in either tensor) is a mismatch; torch::allclose with equal_nan=false semantics.
    bool any_nan = got.isnan().any().item<bool>() || want.isnan().any().item<bool>();
    double d = any_nan ? std::nan("") : diff.max().item<double>();
    if (any_nan) {
      ok = false;
      msg << "output " << i << " contains NaN (or expected does); ";
      r.have_diff = true;
      r.max_abs_diff = std::nan("");
      continue;
    }
    bool close = (diff <= (atol + rtol * want.abs())).all().item<bool>();
    if (!r.have_diff || d > r.max_abs_diff) r.max_abs_diff = d;
    r.have_diff = true;
    if (!close) {
      ok = false;
      int64_t bad = (diff > (atol + rtol * want.abs())).sum().item<int64_t>();
      msg << "output " << i << ": " << bad << " of " << got.numel() << " elements outside atol=" << atol
          << " rtol=" << rtol << " (max abs diff " << d << "); ";
    }
  }
  r.ok = ok;
  r.message = ok ? "outputs match within tolerance" : msg.str();
  if (!ok && r.message.size() >= 2) r.message.resize(r.message.size() - 2);  // drop trailing "; "
  print_result(r);
  return ok ? 0 : 1;
}
