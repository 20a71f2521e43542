#pragma once
// The service's web page (GET /): one self-contained HTML document (inline CSS and plain JS,
// nothing fetched from elsewhere) that reads GET /info for sample users and scenarios and
// POSTs /recommend.
#include <string_view>

namespace mtrec::detail {

std::string_view web_page_html();

}  // namespace mtrec::detail
