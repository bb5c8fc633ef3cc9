// Cost of one prediction, by kind of file, with the /proc writer scan shared
// (as in batch mode) and alone; and of the #! parser.
#include <benchmark/benchmark.h>

#include "exec/shebang.hpp"
#include "procforge/exec.hpp"

using namespace procforge;

namespace {

const exec::SystemFacts& facts() {
  static const exec::SystemFacts f = exec::SystemFacts::probe();
  return f;
}

void predict_path(benchmark::State& state, const char* path, bool shared_writers) {
  static const exec::OpenWriters writers = exec::OpenWriters::scan();
  exec::Request req;
  req.path = path;
  req.argv = {path};
  if (shared_writers) req.writers = &writers;
  for (auto _ : state) {
    auto r = exec::predict(req, facts());
    benchmark::DoNotOptimize(r);
  }
}

void BM_PredictDynamicElf(benchmark::State& s) { predict_path(s, "/usr/bin/ls", true); }
void BM_PredictStaticLdso(benchmark::State& s) { predict_path(s, "/lib64/ld-linux-x86-64.so.2", true); }
void BM_PredictMissing(benchmark::State& s) { predict_path(s, "/usr/bin/does-not-exist", true); }
void BM_PredictWithWriterScan(benchmark::State& s) { predict_path(s, "/usr/bin/ls", false); }

void BM_ParseShebang(benchmark::State& state) {
  const char line[] = "#! /usr/bin/env python3 -u\nimport sys\n";
  const auto buf = exec::make_binprm_buf(std::span(reinterpret_cast<const std::uint8_t*>(line), sizeof line - 1));
  for (auto _ : state) benchmark::DoNotOptimize(exec::parse_shebang(buf));
}

}  // namespace

BENCHMARK(BM_PredictDynamicElf);
BENCHMARK(BM_PredictStaticLdso);
BENCHMARK(BM_PredictMissing);
BENCHMARK(BM_PredictWithWriterScan);
BENCHMARK(BM_ParseShebang);
BENCHMARK_MAIN();
