// Reply box: a live counter in the unit of the network being answered (characters, graphemes
// or X's weighted characters), counting the agent's signature on public replies; canned
// replies filled in by the server for the post answered; and the network's reason when it
// would refuse a public reply.
(function () {
  "use strict";

  var segmenter = window.Intl && Intl.Segmenter ? new Intl.Segmenter(undefined, { granularity: "grapheme" }) : null;
  // twitter-text v3: these code points weigh 1, every other one 2; a link always weighs 23.
  var LIGHT = [[0, 4351], [8192, 8205], [8208, 8223], [8242, 8247]];
  var LINK = /https?:\/\/\S+/g;

  function weighted(text) {
    var links = text.match(LINK) || [];
    var total = 23 * links.length;
    Array.from(text.replace(LINK, "")).forEach(function (ch) {
      var code = ch.codePointAt(0);
      var light = LIGHT.some(function (range) { return code >= range[0] && code <= range[1]; });
      total += light ? 1 : 2;
    });
    return total;
  }

  function measure(text, unit) {
    if (unit.indexOf("grapheme") !== -1 && segmenter) {
      return Array.from(segmenter.segment(text)).length;
    }
    if (unit.indexOf("weighted") !== -1) return weighted(text);
    // Code points, as the server counts characters.
    return Array.from(text).length;
  }

  function setup(form) {
    var select = form.querySelector("[data-reply-post]");
    var text = form.querySelector("[data-reply-text]");
    var counter = form.querySelector("[data-reply-counter]");
    if (!select || !text || !counter) return;
    var count = counter.querySelector("[data-count]");
    var limitLabel = counter.querySelector("[data-limit]");
    var unitLabel = counter.querySelector("[data-unit]");
    var network = counter.querySelector("[data-network]");
    var refusal = form.querySelector("[data-reply-refusal]");
    var audience = form.querySelector("[data-reply-audience]");
    var templates = form.querySelector("[data-reply-template]");
    var templateError = form.querySelector("[data-reply-template-error]");
    var signature = form.dataset.signature || "";

    function chosen() {
      return select.options[select.selectedIndex];
    }

    function radio(value) {
      return form.querySelector('[data-reply-visibility][value="' + value + '"]');
    }

    // What the server sends: a public reply ends with the signature, in the network's style.
    function outgoing() {
      var option = chosen();
      var body = text.value.replace(/\s+$/, "");
      var isPublic = radio("public") && radio("public").checked;
      if (!isPublic || !signature || body.slice(-signature.length) === signature) return body;
      return body + (option.dataset.signatureSeparator || "\n") + signature;
    }

    function update() {
      var option = chosen();
      var limit = parseInt(option.dataset.limit, 10);
      var unit = option.dataset.unit || "characters";
      var used = measure(outgoing(), unit);
      if (unit === "characters") {
        text.maxLength = Math.max(0, limit - (measure(outgoing(), unit) - measure(text.value, unit)));
      }
      count.textContent = String(used);
      counter.classList.toggle("near", used > limit * 0.9 && used <= limit);
      counter.classList.toggle("over", used > limit);
    }

    function retarget() {
      var option = chosen();
      var unit = option.dataset.unit || "characters";
      // maxlength counts UTF-16 units: a fair cap for characters, too strict for the others.
      if (unit === "characters") text.maxLength = parseInt(option.dataset.limit, 10);
      else text.removeAttribute("maxlength");
      limitLabel.textContent = option.dataset.limit;
      unitLabel.textContent = unit;
      network.textContent = option.dataset.network;
      var publicRefusal = option.dataset.publicRefusal || "";
      var directRefusal = option.dataset.directRefusal || "";
      var wanted = option.dataset.direct === "true" || (publicRefusal && !directRefusal) ? "direct" : "public";
      if (radio(wanted)) radio(wanted).checked = true;
      if (refusal) {
        var reason = publicRefusal ? "No public reply: " + publicRefusal : directRefusal ? "No direct message: " + directRefusal : "";
        refusal.textContent = reason;
        refusal.hidden = !reason;
      }
      describe();
      update();
    }

    // Who will see the reply, where the network narrows it (a followers-only post is answered
    // for followers only).
    function describe() {
      if (!audience) return;
      var option = chosen();
      var direct = radio("direct") && radio("direct").checked;
      var said = (direct ? option.dataset.directAudience : option.dataset.publicAudience) || "";
      audience.textContent = said;
      audience.hidden = !said;
    }

    function fill() {
      var id = templates.value;
      if (templateError) templateError.hidden = true;
      if (!id) return;
      var url = form.dataset.templateUrl.replace(/\/0\/$/, "/" + encodeURIComponent(id) + "/");
      fetch(url + "?post=" + encodeURIComponent(select.value), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (response) {
          return response.json().then(function (data) {
            return { ok: response.ok, data: data };
          });
        })
        .then(function (answer) {
          if (!answer.ok) throw new Error(answer.data.error || "The template could not be filled in.");
          text.value = answer.data.text;
          update();
          text.focus();
        })
        .catch(function (error) {
          if (!templateError) return;
          templateError.textContent = error.message;
          templateError.hidden = false;
        });
    }

    text.addEventListener("input", update);
    select.addEventListener("change", retarget);
    form.querySelectorAll("[data-reply-visibility]").forEach(function (input) {
      input.addEventListener("change", function () {
        describe();
        update();
      });
    });
    if (templates) templates.addEventListener("change", fill);
    update();
  }

  document.querySelectorAll("[data-reply-form]").forEach(setup);
})();
