#include "architectures.h"

namespace pyllama {

const std::vector<ArchInfo>& architectures() {
    using P = Positions;
    static const std::vector<ArchInfo> table = {
        // name          family          decoder encoder positions    neox   qk_norm qkv_bias post_norms swa_period
        {"llama",        Family::Llama,  true,   false,  P::Rope,     false, false,  false,   false,     0},
        {"mistral",      Family::Llama,  true,   false,  P::Rope,     false, false,  false,   false,     0},
        {"granite",      Family::Llama,  true,   false,  P::Rope,     false, false,  false,   false,     0},
        {"smollm3",      Family::Llama,  true,   false,  P::Rope,     false, false,  false,   false,     0},
        {"qwen2",        Family::Llama,  true,   false,  P::Rope,     true,  false,  true,    false,     0},
        {"qwen3",        Family::Llama,  true,   false,  P::Rope,     true,  true,   false,   false,     0},
        {"gemma3",       Family::Gemma3, true,   false,  P::Rope,     true,  true,   false,   true,      6},
        {"bert",         Family::Bert,   false,  true,   P::Absolute, false, false,  false,   false,     0},
        {"nomic-bert",   Family::Bert,   false,  true,   P::Rope,     true,  false,  false,   false,     0},
        {"jina-bert-v2", Family::Bert,   false,  true,   P::Alibi,    false, false,  false,   false,     0},
    };
    return table;
}

const ArchInfo* find_architecture(const std::string& name) {
    for (const ArchInfo& a : architectures())
        if (name == a.name) return &a;
    return nullptr;
}

const char* family_name(Family f) {
    switch (f) {
        case Family::Llama: return "llama";
        case Family::Gemma3: return "gemma3";
        case Family::Bert: return "bert";
    }
    return "?";
}

const char* positions_name(Positions p) {
    switch (p) {
        case Positions::Rope: return "rope";
        case Positions::Absolute: return "absolute";
        case Positions::Alibi: return "alibi";
    }
    return "?";
}

}  // namespace pyllama
