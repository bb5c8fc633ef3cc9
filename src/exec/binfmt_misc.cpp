#include "exec/binfmt_misc.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

namespace procforge::exec {

namespace {

std::vector<std::uint8_t> from_hex(const std::string& hex) {
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<std::uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
  return out;
}

bool parse_entry(const std::string& path, MiscEntry& e) {
  std::ifstream in(path);
  if (!in) return false;
  std::string line;
  while (std::getline(in, line)) {
    if (line == "enabled") e.enabled = true;
    else if (line == "disabled") e.enabled = false;
    else if (line.rfind("interpreter ", 0) == 0) e.interpreter = line.substr(12);
    else if (line.rfind("flags: ", 0) == 0) e.flags = line.substr(7);
    else if (line.rfind("offset ", 0) == 0) e.offset = static_cast<std::uint32_t>(std::stoul(line.substr(7)));
    else if (line.rfind("magic ", 0) == 0) e.magic_mode = true, e.magic = from_hex(line.substr(6));
    else if (line.rfind("mask ", 0) == 0) e.mask = from_hex(line.substr(5));
    else if (line.rfind("extension .", 0) == 0) e.extension = line.substr(11);
  }
  return !e.interpreter.empty();
}

}  // namespace

MiscRegistry read_binfmt_misc(const std::string& dir) {
  MiscRegistry reg;
  {
    std::ifstream st(dir + "/status");
    std::string s;
    if (!(st >> s)) return reg;
    reg.enabled = s == "enabled";
  }
  DIR* d = opendir(dir.c_str());
  if (!d) return reg;
  while (dirent* de = readdir(d)) {
    std::string n = de->d_name;
    if (n == "." || n == ".." || n == "status" || n == "register") continue;
    MiscEntry e;
    e.name = n;
    struct stat st {};
    if (stat((dir + "/" + n).c_str(), &st) == 0) e.inode = st.st_ino;
    if (parse_entry(dir + "/" + n, e)) reg.entries.push_back(std::move(e));
  }
  closedir(d);
  std::sort(reg.entries.begin(), reg.entries.end(),
            [](const MiscEntry& a, const MiscEntry& b) { return a.inode > b.inode; });
  return reg;
}

const MiscEntry* match_misc(const MiscRegistry& reg, const BinprmBuf& buf, const std::string& name) {
  if (!reg.enabled) return nullptr;
  const auto dot = name.rfind('.');
  for (const MiscEntry& e : reg.entries) {
    if (!e.enabled) continue;
    if (!e.magic_mode) {
      if (dot != std::string::npos && name.compare(dot + 1, std::string::npos, e.extension) == 0) return &e;
      continue;
    }
    // Registration guarantees offset + size <= BINPRM_BUF_SIZE.
    if (e.offset + e.magic.size() > buf.size()) continue;
    bool same = true;
    for (std::size_t j = 0; j < e.magic.size() && same; ++j) {
      std::uint8_t diff = buf[e.offset + j] ^ e.magic[j];
      if (!e.mask.empty()) diff &= e.mask[j];
      same = diff == 0;
    }
    if (same) return &e;
  }
  return nullptr;
}

}  // namespace procforge::exec
