// The real `procforge profile` binary: the --json contract and the --html
// report, rendered in headless Chromium with a screenshot kept in the build
// directory (profile-report.png) for the docs.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace {

namespace fs = std::filesystem;

struct Out {
  int status = -1;
  std::string out;
};

Out run(const std::vector<std::string>& args) {
  int p[2];
  if (pipe2(p, O_CLOEXEC)) return {};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 2);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  close(p[1]);
  Out o;
  char buf[65536];
  for (ssize_t n; (n = read(p[0], buf, sizeof buf)) > 0;) o.out.append(buf, static_cast<std::size_t>(n));
  close(p[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  o.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return o;
}

TEST(ProfileCli, json_phases_in_pipeline_order_with_the_contract_fields) {
  Out o = run({PROCFORGE_BINARY, "profile", "-n", "3", "--json", "/bin/ls", "/"});
  ASSERT_EQ(o.status, 0) << o.out;
  auto j = nlohmann::json::parse(o.out);
  const char* names[] = {"spawn", "exec", "ld.so start", "load+relocate", "constructors",
                         "libc init", "main", "exit handlers", "teardown+reap"};
  ASSERT_EQ(j["phases"].size(), 9u);
  for (std::size_t i = 0; i < 9; ++i) {
    const auto& p = j["phases"][i];
    EXPECT_EQ(p["name"], names[i]);
    for (const char* k : {"median_us", "min_us", "max_us", "minflt", "majflt"})
      EXPECT_TRUE(p.contains(k) && p[k].is_number()) << names[i] << " lacks " << k;
    EXPECT_LE(p["min_us"].get<double>(), p["median_us"].get<double>());
    EXPECT_LE(p["median_us"].get<double>(), p["max_us"].get<double>());
  }
  EXPECT_GT(j["wall_median_us"].get<double>(), 0);
  EXPECT_EQ(j["runs"], 3);
}

TEST(ProfileCli, missing_program_exits_nonzero_with_a_message) {
  Out o = run({PROCFORGE_BINARY, "profile", "-n", "1", "/nonexistent/x"});
  EXPECT_NE(o.status, 0);
}

TEST(ProfileCli, html_report_renders_in_headless_chromium) {
  const fs::path dir = PROCFORGE_PROBE_DIR;
  const fs::path html = dir / "profile-report.html", png = dir / "profile-report.png";
  fs::remove(png);
  Out o = run({PROCFORGE_BINARY, "profile", "-n", "3", "--html", html.string(), "/bin/ls", "/"});
  ASSERT_EQ(o.status, 0);
  std::ifstream in(html);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string page = ss.str();
  EXPECT_NE(page.find("<svg"), std::string::npos);
  EXPECT_NE(page.find("load+relocate"), std::string::npos);
  EXPECT_NE(page.find("libc.so.6"), std::string::npos);
  EXPECT_EQ(page.find("http://"), page.find("http://www.w3.org/2000/svg")) << "the report must be self-contained";

  std::string chromium;
  for (const char* c : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (access(c, X_OK) == 0) chromium = c;
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (scripts/bootstrap installs it): not rendered";
  Out shot = run({chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                  "--window-size=1000,1400", "--screenshot=" + png.string(), "file://" + html.string()});
  ASSERT_EQ(shot.status, 0) << "chromium failed";
  ASSERT_TRUE(fs::exists(png));
  EXPECT_GT(fs::file_size(png), 10000u) << "a blank page";
  std::printf("screenshot: %s\n", png.c_str());
}

}  // namespace
