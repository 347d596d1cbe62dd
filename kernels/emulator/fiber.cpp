// kernels/emulator/fiber.cpp — cooperative context switching for the emulated CUDA threads.
//
// A block of 1024 threads meets at every barrier and every warp collective (an mma, an ldmatrix, a
// shuffle): tens of thousands of switches per attention tile. On x86-64 a switch saves the six
// callee-saved registers, the x87 control word and MXCSR and swaps the stack pointer (a few
// nanoseconds); swapcontext would add a signal-mask system call to each. Elsewhere ucontext serves.
#include "kernels/emulator/internal.h"

#if defined(__x86_64__)

extern "C" void ferry_emu_switch(void** save_sp, void* next_sp);

// ferry_emu_switch(save, next): push callee-saved state, store rsp in *save, load next, pop, ret.
asm(R"(
  .text
  .globl ferry_emu_switch
  .type ferry_emu_switch, @function
ferry_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size ferry_emu_switch, .-ferry_emu_switch
  .section .note.GNU-stack,"",@progbits
  .text
)");

namespace ferry::emu::detail {

void switch_context(FiberContext& from, const FiberContext& to) { ferry_emu_switch(&from.sp, to.sp); }

void make_context(FiberContext& ctx, char* /*lo*/, char* hi, void (*entry)()) {
  // From the top: a zero "return address" for entry (it never returns), entry itself as the
  // address ferry_emu_switch returns to, six zeroed registers, then MXCSR and the x87 control word
  // of the creating thread. The slot holding entry sits on a 16-byte boundary, so entry starts
  // with the stack alignment of a called function.
  auto top = reinterpret_cast<uintptr_t>(hi) & ~uintptr_t(15);
  auto* words = reinterpret_cast<uint64_t*>(top);
  words[-1] = 0;
  words[-2] = reinterpret_cast<uint64_t>(entry);
  for (int i = 3; i <= 8; ++i) words[-i] = 0;
  uint32_t mxcsr;
  uint16_t fpucw;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fpucw));
  auto* control = reinterpret_cast<unsigned char*>(&words[-9]);
  std::memcpy(control, &mxcsr, 4);
  std::memcpy(control + 4, &fpucw, 2);
  ctx.sp = &words[-9];
}

}  // namespace ferry::emu::detail

#else

#include <ucontext.h>

#include <map>

namespace ferry::emu::detail {

// FiberContext::sp points at a ucontext_t kept here, one per context object.
namespace {
ucontext_t* context_of(FiberContext& c) {
  static std::map<FiberContext*, ucontext_t> contexts;
  return &contexts[&c];
}
}  // namespace

void switch_context(FiberContext& from, const FiberContext& to) {
  ucontext_t* mine = context_of(from);
  from.sp = mine;
  swapcontext(mine, static_cast<ucontext_t*>(to.sp));
}

void make_context(FiberContext& ctx, char* lo, char* hi, void (*entry)()) {
  ucontext_t* u = context_of(ctx);
  getcontext(u);
  u->uc_stack.ss_sp = lo;
  u->uc_stack.ss_size = size_t(hi - lo);
  u->uc_link = nullptr;
  makecontext(u, entry, 0);
  ctx.sp = u;
}

}  // namespace ferry::emu::detail

#endif
