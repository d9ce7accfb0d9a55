// Reply box: a live character counter that follows the limit of the network being answered.
(function () {
  "use strict";

  function setup(form) {
    var select = form.querySelector("[data-reply-post]");
    var text = form.querySelector("[data-reply-text]");
    var counter = form.querySelector("[data-reply-counter]");
    if (!select || !text || !counter) return;
    var count = counter.querySelector("[data-count]");
    var limitLabel = counter.querySelector("[data-limit]");
    var network = counter.querySelector("[data-network]");

    function chosen() {
      return select.options[select.selectedIndex];
    }

    function update() {
      var limit = parseInt(chosen().dataset.limit, 10);
      // Code points, as the server counts them; maxlength (UTF-16 units) is stricter anyway.
      var used = Array.from(text.value).length;
      count.textContent = String(used);
      counter.classList.toggle("near", used > limit * 0.9 && used <= limit);
      counter.classList.toggle("over", used > limit);
    }

    function retarget() {
      var option = chosen();
      text.maxLength = parseInt(option.dataset.limit, 10);
      limitLabel.textContent = option.dataset.limit;
      network.textContent = option.dataset.network;
      var wanted = option.dataset.direct === "true" ? "direct" : "public";
      var radio = form.querySelector('[data-reply-visibility][value="' + wanted + '"]');
      if (radio) radio.checked = true;
      update();
    }

    text.addEventListener("input", update);
    select.addEventListener("change", retarget);
    update();
  }

  document.querySelectorAll("[data-reply-form]").forEach(setup);
})();
