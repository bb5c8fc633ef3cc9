// UniqueFd closes what it owns exactly once, keeps errno, and gives up
// ownership on release() and moves.
#include "common/unique_fd.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <cerrno>

namespace procforge {
namespace {

bool is_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

int open_null() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

TEST(UniqueFd, ClosesOnScopeExitAndKeepsErrno) {
  int raw = open_null();
  ASSERT_GE(raw, 0);
  {
    UniqueFd fd(raw);
    EXPECT_TRUE(fd.valid());
    errno = EXDEV;
  }
  EXPECT_EQ(errno, EXDEV);
  EXPECT_FALSE(is_open(raw));
}

TEST(UniqueFd, ReleaseGivesUpOwnership) {
  int raw = open_null();
  ASSERT_GE(raw, 0);
  {
    UniqueFd fd(raw);
    EXPECT_EQ(fd.release(), raw);
    EXPECT_FALSE(fd.valid());
  }
  EXPECT_TRUE(is_open(raw));
  ::close(raw);
}

TEST(UniqueFd, MoveTransfersAndResetClosesTheOldOne) {
  int a = open_null(), b = open_null();
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  UniqueFd first(a);
  UniqueFd second(std::move(first));
  EXPECT_FALSE(first.valid());  // NOLINT: moved-from state is specified
  EXPECT_EQ(second.get(), a);
  second.reset(b);
  EXPECT_FALSE(is_open(a));
  EXPECT_TRUE(is_open(b));
  UniqueFd third;
  third = std::move(second);
  EXPECT_EQ(third.get(), b);
  third.reset();
  EXPECT_FALSE(is_open(b));
}

}  // namespace
}  // namespace procforge
